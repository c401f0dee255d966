#!/usr/bin/env node
// Offline KQL check with Microsoft's Kusto.Language parser and binder (@kusto/language-service-next).
//
//   node kqlcheck.js --schema eventhouse_schema.kql [FILE.kql ...] [--json RealTimeDashboard.json ...] [--db NAME]
//
// The schema script declares the database: tables (.create[-merge] table), materialized views (as
// tables with the schema their query returns) and functions (.create[-or-alter] function). Every
// block (blocks are separated by blank lines) of the schema and of each FILE is then analyzed
// against it; so is every query text of each dashboard JSON. The dashboard parameters are declared
// as query parameters: _startTime/_endTime (datetime), _underlier/_contract (string) for .kql files,
// and the dashboard's own `parameters[]` for a JSON. On top of Kusto.Language's diagnostics this
// reports what it lets through: unknown control commands (KQLCHK01), text the command parser
// skipped (KQLCHK02), a command among queries or a query in the schema (KQLCHK03/04), duplicate tile
// titles (KQLCHK05), a parameter a dashboard query uses but does not list in usedVariables
// (KQLCHK20/21), and ingestion mappings that are missing, not valid JSON, or do not map every
// column of their table exactly once to `$.column` (MAP001-MAP009).
//
// Output: one line per diagnostic, `file:line: Severity CODE message`, then one JSON summary line.
// Exit status 1 when there is any error, 2 when the command line or the package is wrong.
'use strict';

const fs = require('fs');
const path = require('path');

try {
  require('@kusto/language-service-next/bridge');
  require('@kusto/language-service-next/Kusto.Language.Bridge');
} catch (e) {
  console.error(`kqlcheck: @kusto/language-service-next is not installed in ${__dirname}/node_modules; ` +
    'run `make` (or `npm ci --prefix infra/fabric/kql`)');
  process.exit(2);
}

const K = Kusto.Language;
const S = Kusto.Language.Symbols;

const DEFAULT_PARAMETERS = [
  ['_startTime', 'datetime'], ['_endTime', 'datetime'], ['_underlier', 'string'], ['_contract', 'string'],
];
const SCALAR = {
  datetime: S.ScalarTypes.DateTime, string: S.ScalarTypes.String, long: S.ScalarTypes.Long,
  real: S.ScalarTypes.Real, bool: S.ScalarTypes.Bool, dynamic: S.ScalarTypes.Dynamic,
  timespan: S.ScalarTypes.TimeSpan,
};

// ---------------------------------------------------------------- command line

function parseArgs(argv) {
  const opts = { schema: null, files: [], jsons: [], db: 'Spymaster' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--schema') opts.schema = argv[++i];
    else if (a === '--json') opts.jsons.push(argv[++i]);
    else if (a === '--db') opts.db = argv[++i];
    else if (a.startsWith('--')) usage(`unknown option ${a}`);
    else opts.files.push(a);
  }
  if (!opts.schema) usage('--schema FILE is required');
  for (const f of [opts.schema, ...opts.files, ...opts.jsons]) {
    if (!f || !fs.existsSync(f)) usage(`no such file: ${f}`);
  }
  return opts;
}

function usage(msg) {
  console.error(`kqlcheck: ${msg}\nusage: node kqlcheck.js --schema SCHEMA.kql [FILE.kql ...] [--json DASHBOARD.json ...] [--db NAME]`);
  process.exit(2);
}

// ---------------------------------------------------------------- blocks and reporting

/** Split a script into blocks separated by blank lines: [{text, line}] with 1-based start lines. */
function readBlocks(text) {
  const blocks = [];
  let cur = [];
  let start = 0;
  text.split(/\r?\n/).forEach((l, i) => {
    if (l.trim() === '') {
      if (cur.length) blocks.push({ text: cur.join('\n'), line: start + 1 });
      cur = [];
    } else {
      if (!cur.length) start = i;
      cur.push(l);
    }
  });
  if (cur.length) blocks.push({ text: cur.join('\n'), line: start + 1 });
  return blocks;
}

const isComment = (l) => l.trim().startsWith('//');
const isCommentBlock = (b) => b.text.split('\n').every(isComment);
const stripComments = (t) => t.split('\n').filter((l) => !isComment(l)).join('\n').trim();
const lineWithin = (text, offset) => text.slice(0, offset).split('\n').length - 1;

const found = [];

function report(file, line, severity, code, message) {
  found.push({ file, line, severity, code, message });
}

// ---------------------------------------------------------------- the database from the schema script

const TABLE_RE = /^\.create(?:-merge)?\s+table\s+([A-Za-z_]\w*)\s*\(([^)]*)\)\s*(?:with\s*\([^)]*\))?$/i;
const VIEW_RE = new RegExp('^\\.create(?:-or-alter)?(?:\\s+async)?(?:\\s+ifnotexists)?\\s+materialized-view\\s+' +
  '(?:with\\s*\\((?:[^()"]|"[^"]*")*\\)\\s*)?([A-Za-z_]\\w*)\\s+on\\s+table\\s+([A-Za-z_]\\w*)\\s*\\{([\\s\\S]*)\\}$', 'i');
const FUNCTION_RE = new RegExp('^\\.create(?:-or-alter)?\\s+function\\s+(?:ifnotexists\\s+)?' +
  '(?:with\\s*\\((?:[^()"]|"[^"]*")*\\)\\s*)?([A-Za-z_]\\w*)\\s*(\\([^)]*\\))\\s*(\\{[\\s\\S]*\\})$', 'i');
const MAPPING_RE = /^\.create(?:-or-alter)?\s+table\s+([A-Za-z_]\w*)\s+ingestion\s+(\w+)\s+mapping\s+"([^"]*)"\s*([\s\S]*)$/i;

function parseColumns(text) {
  return text.split(',').map((c) => c.trim()).filter(Boolean).map((c) => {
    const [name, type] = c.split(':').map((s) => s.trim());
    return [name, type];
  });
}

const schemaText = (columns) => '(' + columns.map(([n, t]) => `${n}:${t}`).join(', ') + ')';

/** Tables, views and functions declared by the schema script's blocks. */
function declare(blocks) {
  const db = { tables: new Map(), views: new Map(), functions: new Map(), lines: new Map() };
  for (const b of blocks) {
    const t = stripComments(b.text);
    let m = t.match(TABLE_RE);
    if (m) {
      const prev = db.tables.get(m[1]) || [];
      const cols = parseColumns(m[2]).filter(([n]) => !prev.some(([p]) => p === n));
      db.tables.set(m[1], prev.concat(cols));
      if (!db.lines.has(m[1])) db.lines.set(m[1], b.line);
      continue;
    }
    m = t.match(VIEW_RE);
    if (m) {
      db.views.set(m[1], { source: m[2], query: m[3].trim() });
      continue;
    }
    m = t.match(FUNCTION_RE);
    if (m) db.functions.set(m[1], { params: m[2], body: m[3] });
  }
  return db;
}

function databaseSymbol(db, name) {
  const tables = [...db.tables].map(([n, cols]) => new S.TableSymbol.$ctor7(n, schemaText(cols), null));
  const tablesOnly = globalsFor(new S.DatabaseSymbol.$ctor1(name, tables, false), []);
  const views = [...db.views].map(([n, v]) => {
    const result = K.KustoCode.ParseAndAnalyze(v.query, tablesOnly).ResultType;
    const cols = result && result.Columns
      ? Bridge.toArray(result.Columns).map((c) => [c.Name, c.Type.Name])
      : db.tables.get(v.source) || [];
    return new S.MaterializedViewSymbol.$ctor3(n, schemaText(cols), v.query, null);
  });
  const functions = [...db.functions].map(([n, f]) => new S.FunctionSymbol.$ctor16(n, f.params, f.body, null));
  return new S.DatabaseSymbol.$ctor1(name, tables.concat(views, functions), false);
}

function globalsFor(database, parameters) {
  const cluster = new S.ClusterSymbol.$ctor1('spymaster', [database], false);
  const symbols = parameters.map(([n, t]) => new S.ParameterSymbol(n, SCALAR[t], null));
  return K.GlobalState.Default.WithCluster(cluster).WithDatabase(database).WithParameters(symbols);
}

// ---------------------------------------------------------------- checks of one block

/**
 * Analyze one KQL text and report its diagnostics. `locate(offset)` gives [file line, message prefix]
 * for an offset in the text. Returns the KustoCode.
 */
function analyze(file, text, globals, locate) {
  const code = K.KustoCode.ParseAndAnalyze(text, globals);
  const at = (offset, severity, code_, message) => {
    const [line, prefix] = locate(offset);
    report(file, line, severity, code_, prefix + message);
  };
  const diags = Bridge.toArray(code.GetDiagnostics());
  const analyzer = Bridge.toArray(new K.Editor.KustoCodeService.ctor(code).GetAnalyzerDiagnostics(true));
  for (const d of diags.concat(analyzer)) {
    const snippet = text.substr(d.Start, Math.max(d.Length, 1)).replace(/\s+/g, ' ').slice(0, 60);
    at(d.Start, d.Severity, d.Code, `${d.Message} -> "${snippet}"`);
  }
  K.Syntax.SyntaxElement.WalkNodes(code.Syntax, (n) => {
    const kind = Bridge.getTypeName(n);
    const snippet = n.toString().replace(/\s+/g, ' ').trim().slice(0, 60);
    if (kind === 'Kusto.Language.Syntax.UnknownCommand') {
      at(n.TextStart, 'Error', 'KQLCHK01', `unknown control command -> "${snippet}"`);
    } else if (kind === 'Kusto.Language.Syntax.SkippedTokens' && snippet) {
      at(n.TextStart, 'Error', 'KQLCHK02', `text after the command was not parsed -> "${snippet}"`);
    }
  });
  return code;
}

/** A single-quoted or verbatim Kusto string literal → its value, or null. */
function stringLiteral(text) {
  let m = text.match(/^@'([^']*)'$/) || text.match(/^@"([^"]*)"$/);
  if (m) return m[1];
  m = text.match(/^'((?:[^'\\\n]|\\.)*)'$/) || text.match(/^"((?:[^"\\\n]|\\.)*)"$/);
  return m ? m[1].replace(/\\(.)/g, '$1') : null;
}

function checkMapping(file, block, db) {
  const m = stripComments(block.text).match(MAPPING_RE);
  if (!m) return null;
  const [, table, kind, name, literal] = m;
  const err = (code, msg) => report(file, block.line, 'Error', code, `[${name}] ${msg}`);
  const columns = db.tables.get(table);
  if (!columns) { err('MAP002', `mapping of undeclared table ${table}`); return name; }
  const wanted = kind.toLowerCase() === 'parquet' ? `${table}ParquetMapping` : `${table}Mapping`;
  if (name !== wanted) err('MAP008', `${kind} mapping of ${table} must be named ${wanted}`);
  if (!['json', 'parquet'].includes(kind.toLowerCase())) { err('MAP001', `only json and parquet mappings are checked, got ${kind}`); return name; }
  const value = stringLiteral(literal.trim());
  if (value === null) { err('MAP001', 'the mapping must be one single-line string literal'); return name; }
  let entries;
  try { entries = JSON.parse(value); } catch (e) { err('MAP001', `mapping is not valid JSON: ${e.message}`); return name; }
  if (!Array.isArray(entries)) { err('MAP001', 'mapping JSON must be an array'); return name; }
  const types = new Map(columns);
  const seen = new Set();
  for (const e of entries) {
    const col = e.column ?? e.Column;
    const p = e.path ?? e.Path ?? (e.Properties || e.properties || {}).Path;
    const type = e.datatype ?? e.DataType;
    if (!types.has(col)) { err('MAP003', `column ${col} is not a column of ${table}`); continue; }
    if (seen.has(col)) err('MAP004', `column ${col} is mapped more than once`);
    seen.add(col);
    if (p !== `$.${col}`) err('MAP005', `column ${col} has path ${p}, expected $.${col}`);
    if (type !== undefined && type !== types.get(col)) err('MAP006', `column ${col} has datatype ${type}, the table says ${types.get(col)}`);
  }
  for (const [col] of columns) if (!seen.has(col)) err('MAP007', `column ${col} of ${table} is not mapped`);
  return name;
}

// ---------------------------------------------------------------- files

function checkKqlFile(file, globals, db, isSchema) {
  const titles = new Map();
  const mappings = [];
  let analyzed = 0;
  for (const b of readBlocks(fs.readFileSync(file, 'utf8'))) {
    if (isCommentBlock(b)) continue;
    analyzed++;
    const code = analyze(file, b.text, globals, (off) => [b.line + lineWithin(b.text, off), '']);
    if (isSchema && code.Kind !== 'Command') {
      report(file, b.line, 'Error', 'KQLCHK04', 'a schema script block must be a control command');
    }
    if (!isSchema && code.Kind === 'Command') {
      report(file, b.line, 'Error', 'KQLCHK03', 'control command in a query file');
    }
    const title = b.text.match(/^\/\/\s*(tile|parameter):\s*(.+?)\s*$/m);
    if (title) {
      const key = `${title[1]}: ${title[2]}`;
      if (titles.has(key)) report(file, b.line, 'Error', 'KQLCHK05', `duplicate ${key} (first at line ${titles.get(key)})`);
      else titles.set(key, b.line);
    }
    const mapping = isSchema ? checkMapping(file, b, db) : null;
    if (mapping) mappings.push(mapping);
  }
  const named = (kind) => [...titles.keys()].filter((k) => k.startsWith(`${kind}: `)).map((k) => k.slice(kind.length + 2));
  return { blocks: analyzed, tiles: named('tile'), parameterQueries: named('parameter'), mappings };
}

function dashboardParameters(doc) {
  const out = [];
  for (const p of doc.parameters || []) {
    if (p.kind === 'duration') {
      out.push([p.beginVariableName, 'datetime'], [p.endVariableName, 'datetime']);
    } else if (p.variableName) {
      const type = { string: 'string', int: 'long', decimal: 'real', bool: 'bool', datetime: 'datetime' }[p.kind] || 'dynamic';
      out.push([p.variableName, p.selectionType === 'array' ? 'dynamic' : type]);
    }
  }
  return out;
}

function checkDashboard(file, database) {
  const raw = fs.readFileSync(file, 'utf8');
  const doc = JSON.parse(raw);
  const parameters = dashboardParameters(doc);
  const globals = globalsFor(database, parameters);
  const declared = new Set(Bridge.toArray(globals.Parameters));
  const titles = new Map((doc.tiles || []).map((t) => [t.queryRef && t.queryRef.queryId, t.title]));
  const queriesAt = raw.indexOf('"queries"');
  for (const q of doc.queries || []) {
    const line = raw.slice(0, raw.indexOf(`"${q.id}"`, queriesAt)).split('\n').length;
    const label = titles.get(q.id) || q.id;
    const code = analyze(file, q.text, globals, (off) => [line, `[${label}] query line ${lineWithin(q.text, off) + 1}: `]);
    const used = new Set();
    K.Syntax.SyntaxElement.WalkNodes(code.Syntax, (n) => {
      const sym = n.ReferencedSymbol;
      if (sym && declared.has(sym)) used.add(sym.Name);
    });
    const listed = new Set(q.usedVariables || []);
    for (const v of used) if (!listed.has(v)) report(file, line, 'Error', 'KQLCHK20', `[${label}] uses ${v}, which usedVariables does not list`);
    for (const v of listed) if (!used.has(v)) report(file, line, 'Warning', 'KQLCHK21', `[${label}] lists ${v} in usedVariables but does not use it`);
  }
  return { queries: (doc.queries || []).length, parameters: parameters.map(([n]) => n) };
}

// ---------------------------------------------------------------- main

function main() {
  const opts = parseArgs(process.argv.slice(2));
  const schemaBlocks = readBlocks(fs.readFileSync(opts.schema, 'utf8'));
  const db = declare(schemaBlocks);
  const database = databaseSymbol(db, opts.db);
  const summary = { files: [], blocks: 0, queries: 0, tiles: [], parameterQueries: [], mappings: [] };

  const schema = checkKqlFile(opts.schema, globalsFor(database, []), db, true);
  summary.files.push(opts.schema);
  summary.blocks += schema.blocks;
  summary.mappings = schema.mappings;
  for (const [table, line] of db.lines) {
    if (!schema.mappings.includes(`${table}Mapping`)) {
      report(opts.schema, line, 'Error', 'MAP009', `table ${table} has no ingestion mapping ${table}Mapping`);
    }
  }
  const queryGlobals = globalsFor(database, DEFAULT_PARAMETERS);
  for (const f of opts.files) {
    const r = checkKqlFile(f, queryGlobals, db, false);
    summary.files.push(f);
    summary.blocks += r.blocks;
    summary.tiles.push(...r.tiles);
    summary.parameterQueries.push(...r.parameterQueries);
  }
  for (const f of opts.jsons) {
    const r = checkDashboard(f, database);
    summary.files.push(f);
    summary.queries += r.queries;
  }
  for (const d of found) console.log(`${d.file}:${d.line}: ${d.severity} ${d.code} ${d.message}`);
  const errors = found.filter((d) => d.severity === 'Error').length;
  console.log(JSON.stringify({
    ...summary,
    tables: [...db.tables.keys()],
    materializedViews: [...db.views.keys()],
    functions: [...db.functions.keys()],
    errors,
    warnings: found.length - errors,
  }));
  process.exit(errors ? 1 : 0);
}

main();
