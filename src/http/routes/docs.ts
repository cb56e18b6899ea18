// The browsable API reference: Redoc's standalone bundle, served from the redoc package (never a
// CDN), rendering the /openapi.yaml this process serves.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { Router } from 'express';
import helmet from 'helmet';

const BUNDLE_PATH = '/docs/redoc.standalone.js';

/**
 * The one thing the bundle would fetch from elsewhere: the Redocly logo at the foot of the sidebar,
 * hard-coded to Redocly's CDN. It becomes a blank image, so the page asks no other host for anything.
 */
const REDOCLY_LOGO_URL = '"https://cdn.redoc.ly/redoc/logo-mini.svg"';
const BLANK_IMAGE = `"data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 1 1'/%3E"`;

// URLs are relative to the page, so that the page also works behind a proxy that serves jetpost
// under a path prefix (https://host/jetpost/docs). No inline script: Redoc renders the <redoc>
// element by itself once its bundle has loaded. The empty icon spares the browser a request for
// /favicon.ico, a 404.
const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>jetpost API reference</title>
<link rel="icon" href="data:,">
</head>
<body>
<redoc spec-url="openapi.yaml"></redoc>
<script src="${BUNDLE_PATH.slice(1)}"></script>
</body>
</html>
`;

/**
 * Exactly what Redoc needs: its bundle, the document from this origin, the style elements its
 * styled-components write, data: images, and the search index's Web Worker, which it starts from a
 * blob: URL. No upgrade-insecure-requests (helmet's default), which would break the page when
 * jetpost is reached over plain http on another host than localhost.
 */
const docsPolicy = helmet.contentSecurityPolicy({
  useDefaults: false,
  directives: {
    defaultSrc: ["'none'"],
    scriptSrc: ["'self'"],
    styleSrc: ["'self'", "'unsafe-inline'"],
    imgSrc: ["'self'", 'data:'],
    connectSrc: ["'self'"],
    workerSrc: ['blob:'],
    baseUri: ["'none'"],
    formAction: ["'none'"],
    frameAncestors: ["'none'"],
  },
});

interface Bundle {
  body: Buffer;
  /** Computed once: express would hash the 1 MB bundle again for every request. */
  tag: string;
}

function readBundle(file: string): Bundle {
  const body = Buffer.from(readFileSync(file, 'utf8').replace(REDOCLY_LOGO_URL, BLANK_IMAGE));
  return { body, tag: `"${createHash('sha256').update(body).digest('base64url')}"` };
}

export function docsRouter(): Router {
  // Found at start (a missing package fails it), read at the first request for it: the 1 MB bundle
  // (2 MB as a string) would otherwise sit in the memory of every process, most never asked for it.
  const bundleFile = createRequire(import.meta.url).resolve('redoc/bundles/redoc.standalone.js');
  let bundle: Bundle | undefined;
  // Strict: /docs/ would resolve the page's relative URLs under /docs/, so it is a 404 like any
  // other undocumented path.
  const router = Router({ strict: true });

  router.get('/docs', docsPolicy, (_req, res) => {
    res.type('html').send(PAGE);
  });

  router.get(BUNDLE_PATH, (_req, res) => {
    bundle ??= readBundle(bundleFile);
    res.type('text/javascript').set({ 'Cache-Control': 'public, max-age=3600', ETag: bundle.tag }).send(bundle.body);
  });

  return router;
}
