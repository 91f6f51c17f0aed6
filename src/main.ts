// The command-line entry of the single executable (`bun run build`), and of `bun run src/main.ts`.
//   tcpchat [serve] [options]   run the server (the default)
//   tcpchat --version           version and the git commit it was built from
//   tcpchat --help              this text
import { benchMain } from "../bench/run.ts";
import { filesWorkerMain } from "../bench/files.ts";
import { runRelay } from "../bench/relay.ts";
import { runWorker } from "../bench/worker.ts";
import { adminMain } from "./admin.ts";
import { chatMain } from "./cli.ts";
import { main as serve } from "./server.ts";
import { versionLine } from "./version.ts";

const USAGE = `Usage: tcpchat <command> [options]

Commands:
  serve [options]   run the chat server (the default when no command is given);
                    "tcpchat serve --help" lists its options
  chat [options]    the terminal client ("tcpchat chat --help" lists its options)
  admin COMMAND     operate a running server over its admin socket: sessions, kick, ban,
                    backup... ("tcpchat admin --help" lists them)
  bench [options]   the fan-out benchmark against this executable's own server
                    ("tcpchat bench --help"; results go to ./bench/results)
  version           print the version and the git commit it was built from

  --version, -v     same as "version"
  --help, -h        this text`;

export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
      return serve([]);
    case "serve":
      return serve(rest);
    case "chat":
      return chatMain(rest);
    case "admin":
      return adminMain(rest);
    case "bench":
      return benchMain(rest);
    case "__bench-worker": // processes that `bench` starts
      runWorker();
      return new Promise<number>(() => {}); // runs until the coordinator says exit
    case "__bench-files":
      await filesWorkerMain();
      return 0;
    case "__bench-relay":
      runRelay(rest);
      return new Promise<number>(() => {});
    case "version":
    case "--version":
    case "-v":
      console.log(versionLine());
      return 0;
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return 0;
    default:
      if (cmd.startsWith("--")) return serve(argv); // options alone: serve with them
      console.error(`tcpchat: unknown command "${cmd}"\n\n${USAGE}`);
      return 2;
  }
}

process.exit(await run(process.argv.slice(2)));
