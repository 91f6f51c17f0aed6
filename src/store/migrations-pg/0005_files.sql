CREATE TABLE "file_chunks" (
	"file" bigint NOT NULL,
	"off" bigint NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "file_chunks_file_off_pk" PRIMARY KEY("file","off")
);
--> statement-breakpoint
CREATE TABLE "files" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "files_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"sha256" text NOT NULL,
	"size" bigint NOT NULL,
	"done" integer DEFAULT 0 NOT NULL,
	"created" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "uploads" (
	"id" text PRIMARY KEY NOT NULL,
	"user" text NOT NULL,
	"size" bigint NOT NULL,
	"sha256" text NOT NULL,
	"received" bigint DEFAULT 0 NOT NULL,
	"done" integer DEFAULT 0 NOT NULL,
	"file" bigint NOT NULL,
	"touched" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "file_id" bigint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "file_size" bigint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "file_sha" text;--> statement-breakpoint
CREATE UNIQUE INDEX "files_sha256" ON "files" USING btree ("sha256") WHERE "files"."done" = 1;--> statement-breakpoint
CREATE INDEX "uploads_user" ON "uploads" USING btree ("user","sha256");--> statement-breakpoint
CREATE INDEX "uploads_touched" ON "uploads" USING btree ("touched");--> statement-breakpoint
CREATE INDEX "uploads_file" ON "uploads" USING btree ("file");--> statement-breakpoint
CREATE INDEX "messages_file" ON "messages" USING btree ("file_id") WHERE "messages"."file_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_sender_file" ON "messages" USING btree ("sender","file_size") WHERE "messages"."file_id" IS NOT NULL;--> statement-breakpoint
-- Hand-written: a chunk is read by substring (PostgresStore.readFile); stored uncompressed, only
-- the TOAST slices holding the part asked for are read.
ALTER TABLE "file_chunks" ALTER COLUMN "data" SET STORAGE EXTERNAL;--> statement-breakpoint
-- Hand-written: the messages stored before files were stored apart (PROTOCOL.md §3.9) hold their
-- bytes inline (file_data). Each content becomes one stored file (in chunks of at most CHUNK_MAX,
-- 1 MiB) which the messages hold, and file_data is emptied; `size` (messageSize) counts
-- FILE_META_SIZE (96) instead of the bytes.
CREATE TEMP TABLE "inline_files" ON COMMIT DROP AS
  SELECT "mid", encode(sha256("file_data"), 'hex') AS "sha" FROM "messages" WHERE "file_data" IS NOT NULL;--> statement-breakpoint
INSERT INTO "files" ("sha256", "size", "done", "created")
  SELECT i."sha", min(length(m."file_data")), 1, (extract(epoch FROM now()) * 1000)::bigint
  FROM "inline_files" i JOIN "messages" m ON m."mid" = i."mid" GROUP BY i."sha";--> statement-breakpoint
INSERT INTO "file_chunks" ("file", "off", "data")
  SELECT f."id", o."off", substring(m."file_data" FROM o."off" + 1 FOR 1048576)
  FROM (SELECT DISTINCT ON ("sha") "sha", "mid" FROM "inline_files" ORDER BY "sha", "mid") i
    JOIN "messages" m ON m."mid" = i."mid"
    JOIN "files" f ON f."sha256" = i."sha" AND f."done" = 1
    CROSS JOIN LATERAL generate_series(0, length(m."file_data") - 1, 1048576) AS o("off");--> statement-breakpoint
UPDATE "messages" m SET "file_id" = f."id", "file_size" = length(m."file_data"), "file_sha" = i."sha",
    "size" = m."size" - length(m."file_data") + 96, "file_data" = NULL
  FROM "inline_files" i JOIN "files" f ON f."sha256" = i."sha" AND f."done" = 1
  WHERE m."mid" = i."mid";
