// The dashboard handlers' options: authorize sees the request of its
// handler (Node's for dashboardHandler, the fetch Request for
// dashboardFetchHandler) and a typed action.
import * as http from 'node:http'
import { BackgroundEngine, type DashboardAction, type DashboardErrorCode, type DashboardHandler, type DashboardFetchHandler } from 'enact-background'

declare const engine: BackgroundEngine

export function dashboards() {
  const node: DashboardHandler = engine.dashboardHandler({
    basePath: '/enact',
    maxBodyBytes: 65536,
    authorize: (req, { action, id }) => req.headers['x-user'] === 'ops' && action !== 'retry' && id.length > 0,
    authorizeRead: async (req, read) => read.action === 'read' || req.method === 'POST',
  })
  http.createServer(node)
  http.createServer((req, res) => node(req, res, () => res.end()))
  const fetchHandler: DashboardFetchHandler = engine.dashboardFetchHandler({ basePath: '/enact', authorize: async (req: Request) => req.headers.get('x-user') === 'ops' })
  const action: DashboardAction = { action: 'cancel', id: 'exec_1' }
  const code: DashboardErrorCode = 'ENACT_FORBIDDEN'
  // @ts-expect-error: not an action of the dashboard
  const wrong: DashboardAction = { action: 'delete', id: 'exec_1' }
  // @ts-expect-error: a fetch Request has no Node headers object
  engine.dashboardFetchHandler({ authorize: (req) => req.headers['x-user'] === 'ops' })
  // @ts-expect-error: unknown option
  engine.dashboardHandler({ basepath: '/enact' })
  return [fetchHandler, action, code, wrong]
}
