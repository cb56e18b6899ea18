// The busiest routes of the express app served without express's per-request walk: POST /queue (one
// message per request is the load jetpost is sized for) and POST /events (Mailjet's callbacks, by
// the hundred), each answered by the handlers express itself holds for it, run in a plain loop.
// Every other request goes to the app as before. The handlers see what they see under express (the
// app's request and response prototypes, res.locals, the matched route), errors go to the app's
// error handler, so both paths give the same answers: only the router's matching and bookkeeping
// are skipped.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import type { ErrorRequestHandler, Express, Request, RequestHandler, Response } from 'express';

/** An express Route as router 2.x holds it: its path and its handlers by method. */
export interface ExpressRoute {
  path: string;
  stack: Array<{ method?: string; handle: RequestHandler }>;
}

export interface DirectRoute {
  /** The request line it takes: a method and an exact path (no query string: those go to express). */
  method: string;
  /** The route express matches for it (its handlers are run, in order). */
  route: ExpressRoute;
}

export interface DirectRouteOptions {
  routes: DirectRoute[];
  /** The app-level middlewares that run before every router (security headers, the request log), in order. */
  before: RequestHandler[];
  /** The app's error handler, which answers whatever a handler passes to next(error) or throws. */
  errorHandler: ErrorRequestHandler;
  /** What express's final handler does with an error once the answer has begun: the connection is closed. */
  onLateError: (error: unknown, route: string) => void;
}

type Serve = (req: Request, res: Response) => void;

export function serveRoutesDirectly(app: Express, { routes, before, errorHandler, onLateError }: DirectRouteOptions): RequestListener {
  // By path, then by method: a request line is looked up without building a string.
  const served = new Map<string, Map<string, Serve>>();
  for (const { method, route } of routes) {
    const byMethod = served.get(route.path) ?? new Map<string, Serve>();
    byMethod.set(method, directServer(app, method, route, before, errorHandler, onLateError));
    served.set(route.path, byMethod);
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    const serve = served.get(req.url!)?.get(req.method!);
    if (serve !== undefined) {
      serve(req as Request, res as Response);
      return;
    }
    app(req, res);
  };
}

function directServer(
  app: Express,
  method: string,
  route: ExpressRoute,
  before: RequestHandler[],
  errorHandler: ErrorRequestHandler,
  onLateError: DirectRouteOptions['onLateError'],
): Serve {
  const lowerMethod = method.toLowerCase();
  const handlers = [...before, ...route.stack.filter((layer) => layer.method === undefined || layer.method === lowerMethod).map((layer) => layer.handle)];
  const path = route.path;

  return (req, res) => {
    // What express's app.handle and its router set before a route's handlers run.
    req.res = res;
    res.req = req;
    Object.setPrototypeOf(req, app.request);
    Object.setPrototypeOf(res, app.response);
    res.locals = Object.create(null) as Response['locals'];
    req.originalUrl = req.url;
    req.baseUrl = '';
    req.params = {};
    req.route = route;
    let index = 0;
    const fail = (error: unknown) => {
      try {
        errorHandler(error, req, res, (late?: unknown) => {
          onLateError(late, path);
          req.socket.destroy();
        });
      } catch (thrown) {
        onLateError(thrown, path);
        req.socket.destroy();
      }
    };
    // As express's router: a handler goes on with next(), fails with next(error), a throw or a rejected promise.
    const next = (error?: unknown): void => {
      if (error) {
        fail(error);
        return;
      }
      const handler = handlers[index];
      index += 1;
      if (handler === undefined) {
        fail(new Error(`the handlers of ${method} ${path} all passed the request on without answering it`));
        return;
      }
      try {
        const result: unknown = handler(req, res, next);
        if (result instanceof Promise) {
          result.then(undefined, (rejection: unknown) => next(rejection || new Error('Rejected promise')));
        }
      } catch (thrown) {
        next(thrown);
      }
    };
    next();
  };
}
