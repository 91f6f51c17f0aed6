import { buildInfo } from "./build-info-macro.ts" with { type: "macro" };

/** Fixed at build time: package.json's version and the git commit built from. */
export const BUILD = buildInfo();

export function versionLine(): string {
  return `tcpchat ${BUILD.version} (commit ${BUILD.commit}, bun ${Bun.version})`;
}
