//! Cron expressions: parsing and next-tick computation in a time zone.
