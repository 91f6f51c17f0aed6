// The client imports src/protocol/requests.ts for its types only; that file's request
// validator (server code, never in the page's bundle) calls Node's Buffer.byteLength.
// Declared here so the browser type-check can read the file. The bundle test
// (test/web/client-ws.test.ts) checks that no Buffer reaches the page.
declare const Buffer: { byteLength(s: string): number };
