// Prints the README's configuration table from src/config.ts (the one source of every option).
// Usage: bun run scripts/config-table.ts   (paste between the config-table markers in README.md)
import { markdownTable } from "../src/config.ts";

console.log(markdownTable());
