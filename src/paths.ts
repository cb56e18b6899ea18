// Files that ship beside the code (sql/, openapi.yaml), found from the package root so the same
// code works from src/ (tsx) and from dist/src/ (compiled).
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

function findPackageRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json')) && existsSync(path.join(dir, 'sql'))) {
      return dir;
    }
    if (path.dirname(dir) === dir) {
      throw new Error(`cannot find jetpost's package root (package.json beside sql/) above ${start}`);
    }
  }
}

export const PACKAGE_ROOT = findPackageRoot(path.dirname(fileURLToPath(import.meta.url)));
export const MIGRATIONS_DIR = path.join(PACKAGE_ROOT, 'sql');
export const OPENAPI_PATH = path.join(PACKAGE_ROOT, 'openapi.yaml');
