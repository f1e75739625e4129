// doiuse-email over many files in one process: node doiuse.mjs MODULE_DIR CLIENTS FILE... -> JSON
// {file: {success, errors, notes}} on stdout. MODULE_DIR is the installed package's folder.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';

const [moduleDir, clients, ...files] = process.argv.slice(2);
const { doIUseEmail } = await import(pathToFileURL(path.join(moduleDir, 'index.js')).href);
const out = {};
for (const file of files) {
  out[file] = doIUseEmail(fs.readFileSync(file, 'utf8'), { emailClients: clients.split(',') });
}
process.stdout.write(JSON.stringify(out));
