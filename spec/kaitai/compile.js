#!/usr/bin/env node
// Compiles a .ksy file with the npm build of kaitai-struct-compiler and writes
// the generated files to an output directory.
//
//   node compile.js --target javascript --outdir DIR FILE.ksy
//
// The npm package "kaitai-struct-compiler" is a library without a command
// line (the `kaitai-struct-compiler` command is the JVM build, not on npm),
// so this script stands in for it with the same flag names.
//
// Its JavaScript API drops warnings (style warnings such as "use `len_x`
// instead of ...", encoding name warnings) silently, and only rejects on
// errors. To fail on warnings as well, the pinned compiler's source is loaded
// with a one-line hook that hands the list of compilation problems to us.
// The hook anchors on the exact generated code of kaitai-struct-compiler
// 0.11.0 (pinned in package.json); if it is not found, this script fails
// rather than silently skipping the warning check.
'use strict';

const fs = require('fs');
const path = require('path');
const Module = require('module');
const YAML = require('yaml');

function usage(msg) {
  if (msg) process.stderr.write(`compile.js: ${msg}\n`);
  process.stderr.write('usage: node compile.js --target javascript --outdir DIR FILE.ksy\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { target: null, outdir: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-t' || a === '--target') opts.target = argv[++i];
    else if (a === '-d' || a === '--outdir') opts.outdir = argv[++i];
    else if (a.startsWith('--target=')) opts.target = a.slice('--target='.length);
    else if (a.startsWith('--outdir=')) opts.outdir = a.slice('--outdir='.length);
    else if (a.startsWith('-')) usage(`unknown option ${a}`);
    else opts.files.push(a);
  }
  if (!opts.target) usage('missing --target');
  if (!opts.outdir) usage('missing --outdir');
  if (opts.files.length !== 1) usage('exactly one .ksy file expected');
  return opts;
}

// Loads the compiler from source, with the problem hook added.
function loadCompiler(onProblems) {
  const file = require.resolve('kaitai-struct-compiler');
  const pkg = require('kaitai-struct-compiler/package.json');
  const anchor = 'var problems = $as_sc_Iterable(problems$2);';
  const src = fs.readFileSync(file, 'utf8');
  if (src.split(anchor).length !== 2) {
    throw new Error(`kaitai-struct-compiler ${pkg.version}: warning hook anchor not found; ` +
      'this script is written for 0.11.0 (see package.json)');
  }
  const hookName = '__kvcKaitaiProblems';
  const patched = src.replace(anchor,
    `${anchor} if (typeof globalThis.${hookName} === "function") globalThis.${hookName}(problems);`);
  globalThis[hookName] = (problems) => {
    const list = [];
    const it = problems.iterator__sc_Iterator();
    while (it.hasNext__Z()) {
      const p = it.next__O();
      list.push(String(p.message__T()).trim());
    }
    onProblems(list);
  };
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(path.dirname(file));
  m._compile(patched, file);
  return { compiler: m.exports, version: pkg.version };
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const ksyPath = opts.files[0];
  let problems = [];
  const { compiler, version } = loadCompiler((list) => { problems = problems.concat(list); });

  const ksy = YAML.parse(fs.readFileSync(ksyPath, 'utf8'));
  let files;
  try {
    files = await compiler.compile(opts.target, ksy, null, false);
  } catch (e) {
    const msg = e && typeof e.getMessage === 'function' ? e.getMessage() : String(e && e.message || e);
    process.stderr.write(`${ksyPath}: compilation failed (kaitai-struct-compiler ${version}):\n${msg}\n`);
    for (const p of problems) process.stderr.write(`${p}\n`);
    process.exit(1);
  }
  if (problems.length > 0) {
    process.stderr.write(`${ksyPath}: ${problems.length} warning(s) (kaitai-struct-compiler ${version}):\n`);
    for (const p of problems) process.stderr.write(`${ksyPath}: ${p}\n`);
    process.exit(1);
  }
  fs.mkdirSync(opts.outdir, { recursive: true });
  for (const [name, contents] of Object.entries(files)) {
    const out = path.join(opts.outdir, name);
    fs.mkdirSync(path.dirname(out), { recursive: true });
    fs.writeFileSync(out, contents);
    process.stdout.write(`${ksyPath} -> ${out}\n`);
  }
}

main().catch((e) => {
  process.stderr.write(`compile.js: ${e && e.stack || e}\n`);
  process.exit(1);
});
