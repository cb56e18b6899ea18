// One route of the express app served without express's per-request walk: its busiest route
// (POST /queue) answered by the handlers express itself holds for it, run in a plain loop. Every other
// request goes to the app as before. The handlers see what they see under express (the app's request
// and response prototypes, res.locals, the matched route), errors go to the app's error handler, so
// both paths give the same answers: only the router's matching and bookkeeping are skipped.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';

import type { ErrorRequestHandler, Express, Request, RequestHandler, Response } from 'express';

/** An express Route as router 2.x holds it: its path and its handlers by method. */
export interface ExpressRoute {
  path: string;
  stack: Array<{ method?: string; handle: RequestHandler }>;
}

export interface DirectRouteOptions {
  /** The request line it takes: a method and an exact path (no query string: those go to express). */
  method: string;
  /** The route express matches for it (its handlers are run, in order). */
  route: ExpressRoute;
  /** The app-level middlewares that run before every router (security headers, the request log), in order. */
  before: RequestHandler[];
  /** The app's error handler, which answers whatever a handler passes to next(error) or throws. */
  errorHandler: ErrorRequestHandler;
  /** What express's final handler does with an error once the answer has begun: the connection is closed. */
  onLateError: (error: unknown) => void;
}

export function serveRouteDirectly(app: Express, { method, route, before, errorHandler, onLateError }: DirectRouteOptions): RequestListener {
  const lowerMethod = method.toLowerCase();
  const handlers = [...before, ...route.stack.filter((layer) => layer.method === undefined || layer.method === lowerMethod).map((layer) => layer.handle)];
  const path = route.path;

  function serve(req: Request, res: Response): void {
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
          onLateError(late);
          req.socket.destroy();
        });
      } catch (thrown) {
        onLateError(thrown);
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
  }

  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === method && req.url === path) {
      serve(req as Request, res as Response);
      return;
    }
    app(req, res);
  };
}
