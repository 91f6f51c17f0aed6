// The command-line entry of the single executable (`bun run build`), and of `bun run src/main.ts`.
//   tcpchat [serve] [options]   run the server (the default)
//   tcpchat --version           version and the git commit it was built from
//   tcpchat --help              this text
import { main as serve } from "./server.ts";
import { versionLine } from "./version.ts";

const USAGE = `Usage: tcpchat <command> [options]

Commands:
  serve [options]   run the chat server (the default when no command is given);
                    "tcpchat serve --help" lists its options
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
