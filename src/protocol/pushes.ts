// What the server sends unasked, PROTOCOL.md §5, and the shape of a message on the wire.
import type { FileField } from "./requests.ts";

/** A message as it appears in `msg` pushes and in `history`/`sync` replies. */
export interface WireMessage {
  mid: number;
  ts: number;
  from: string;
  /** Set for a group message. */
  group?: string;
  /** Set for a direct message: its addressee (as given in `send`). */
  user?: string;
  text?: string;
  file?: FileField;
  cid?: string;
}

export type Push =
  | ({ t: "msg" } & WireMessage)
  | { t: "presence"; user: string; online: boolean }
  | { t: "bye"; reason: string };
