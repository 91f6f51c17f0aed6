// A Bun macro: evaluated when the code is bundled or transpiled. It records the
// version from package.json and the git commit the build was made from.
import pkg from "../package.json" with { type: "json" };

export function buildInfo(): { version: string; commit: string } {
  let commit = "unknown";
  try {
    const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stderr: "ignore" });
    if (r.exitCode === 0) {
      commit = r.stdout.toString().trim();
      const dirty = Bun.spawnSync(["git", "status", "--porcelain", "--untracked-files=no"], { cwd: import.meta.dir });
      if (dirty.exitCode === 0 && dirty.stdout.toString().trim() !== "") commit += "-dirty";
    }
  } catch {
    // no git: leave "unknown"
  }
  return { version: pkg.version, commit };
}
