// `npm run deps:graph [-- <src dir>]`: the import graph of src/ at folder level. Each folder (or file
// directly under src/) is a node; an edge counts the import statements from one to the other, and how
// many of them import types only (erased when compiled: no load at run time). Dynamic imports are
// listed apart, and folder cycles are named: ARCHITECTURE.md's floors allow none.
import fs from 'node:fs';
import path from 'node:path';

import ts from 'typescript';

interface Edge {
  from: string;
  to: string;
  dynamic: boolean;
  typeOnly: boolean;
}

const root = path.resolve(process.argv[2] ?? 'src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

/** A file's node: its folder under src/, or its own name for a file directly under src/. */
function nodeOf(file: string): string {
  const [first, ...rest] = path.relative(root, file).split(path.sep);
  return rest.length === 0 ? first! : `${first}/`;
}

/** Whether an import declaration brings in types only (`import type …`, or every name marked `type`). */
function importsTypesOnly(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) {
    return false;
  }
  if (clause.isTypeOnly) {
    return true;
  }
  const bindings = clause.namedBindings;
  return clause.name === undefined && bindings !== undefined && ts.isNamedImports(bindings) && bindings.elements.every((element) => element.isTypeOnly);
}

/** The relative module specifiers a file imports, static and dynamic. */
function importsOf(file: string): Array<{ specifier: string; dynamic: boolean; typeOnly: boolean }> {
  const source = ts.createSourceFile(file, fs.readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Array<{ specifier: string; dynamic: boolean; typeOnly: boolean }> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, dynamic: false, typeOnly: importsTypesOnly(node) });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, dynamic: false, typeOnly: node.isTypeOnly });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const [argument] = node.arguments;
      if (argument && ts.isStringLiteralLike(argument)) {
        found.push({ specifier: argument.text, dynamic: true, typeOnly: false });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found.filter(({ specifier }) => specifier.startsWith('.'));
}

const edges: Edge[] = sourceFiles(root).flatMap((file) =>
  importsOf(file).map(({ specifier, dynamic, typeOnly }) => ({
    from: nodeOf(file),
    to: nodeOf(path.resolve(path.dirname(file), specifier.replace(/\.js$/, '.ts'))),
    dynamic,
    typeOnly,
  })),
);

const counts = new Map<string, Map<string, number>>();
const typeCounts = new Map<string, number>();
for (const edge of edges.filter((e) => e.from !== e.to && !e.dynamic)) {
  const targets = counts.get(edge.from) ?? new Map<string, number>();
  targets.set(edge.to, (targets.get(edge.to) ?? 0) + 1);
  counts.set(edge.from, targets);
  if (edge.typeOnly) {
    typeCounts.set(`${edge.from} ${edge.to}`, (typeCounts.get(`${edge.from} ${edge.to}`) ?? 0) + 1);
  }
}
const label = (from: string, to: string, n: number) => {
  const types = typeCounts.get(`${from} ${to}`) ?? 0;
  return types === 0 ? `${to}(${n})` : types === n ? `${to}(${n} type-only)` : `${to}(${n}, ${types} type-only)`;
};
const nodes = [...new Set(sourceFiles(root).map(nodeOf))].sort();
const width = Math.max(...nodes.map((node) => node.length));

const lines: string[] = [
  `import graph of ${path.relative(process.cwd(), root) || '.'} (folder → what it imports: import statements, and how many bring types only)`,
];
for (const node of nodes) {
  const targets = [...(counts.get(node) ?? new Map<string, number>())].sort(([a], [b]) => a.localeCompare(b));
  lines.push(`  ${node.padEnd(width)} → ${targets.length === 0 ? '(nothing)' : targets.map(([to, n]) => label(node, to, n)).join(' ')}`);
}

const dynamic = edges.filter((edge) => edge.dynamic);
lines.push('', 'dynamic imports:', ...(dynamic.length === 0 ? ['  (none)'] : dynamic.map((edge) => `  ${edge.from} → ${edge.to}`)));

// Folder cycles: the strongly connected components of more than one node (Tarjan).
const index = new Map<string, number>();
const low = new Map<string, number>();
const stack: string[] = [];
const cycles: string[][] = [];
const connect = (node: string): void => {
  index.set(node, index.size);
  low.set(node, index.get(node)!);
  stack.push(node);
  for (const next of (counts.get(node) ?? new Map<string, number>()).keys()) {
    if (!index.has(next)) {
      connect(next);
      low.set(node, Math.min(low.get(node)!, low.get(next)!));
    } else if (stack.includes(next)) {
      low.set(node, Math.min(low.get(node)!, index.get(next)!));
    }
  }
  if (low.get(node) === index.get(node)) {
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      component.push(member);
    } while (member !== node);
    if (component.length > 1) {
      cycles.push(component.sort());
    }
  }
};
nodes.forEach((node) => index.has(node) || connect(node));
lines.push('', 'folder cycles (folders that reach each other):', ...(cycles.length === 0 ? ['  (none)'] : cycles.map((cycle) => `  ${cycle.join(' ')}`)));
const mutual = [...counts].flatMap(([from, targets]) =>
  [...targets.keys()].filter((to) => from < to && counts.get(to)?.has(from)).map((to) => `  ${from} ↔ ${to}`),
);
lines.push('', 'folders that import each other:', ...(mutual.length === 0 ? ['  (none)'] : mutual.sort()));

process.stdout.write(`${lines.join('\n')}\n`);
