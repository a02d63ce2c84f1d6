// Validates an AsyncAPI document with the official parser (the AsyncAPI JSON Schema plus its Spectral
// rules) and prints every diagnostic as one JSON line. Exits 1 when any diagnostic is an error, 2 when the
// file cannot be read. Usage: node validate.mjs ../../docs/asyncapi.yaml
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";

const path = process.argv[2];
if (!path) {
  console.error("usage: node validate.mjs <asyncapi.yaml>");
  process.exit(2);
}
let source;
try {
  source = await readFile(path, "utf8");
} catch (error) {
  console.error(`cannot read ${path}: ${error.message}`);
  process.exit(2);
}
const { document, diagnostics } = await new Parser().parse(source, { source: path });
const severityNames = { 0: "error", 1: "warning", 2: "information", 3: "hint" };
for (const diagnostic of diagnostics) {
  console.log(
    JSON.stringify({
      severity: severityNames[diagnostic.severity] ?? String(diagnostic.severity),
      code: diagnostic.code,
      message: diagnostic.message,
      path: diagnostic.path.join("."),
    }),
  );
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (errors.length > 0 || document === undefined) {
  console.error(`${path}: ${errors.length} error(s)`);
  process.exit(1);
}
console.error(`${path}: valid AsyncAPI ${document.version()}`);
