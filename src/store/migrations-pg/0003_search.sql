CREATE TABLE "search_state" (
	"id" integer PRIMARY KEY NOT NULL,
	"indexed" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "search_text" (
	"mid" bigint PRIMARY KEY NOT NULL,
	"conv" text NOT NULL,
	"sender" text NOT NULL,
	"to_user" text,
	"body" text NOT NULL
);
--> statement-breakpoint
CREATE INDEX "search_text_conv" ON "search_text" USING btree ("conv","mid");--> statement-breakpoint
-- Hand-written: the one row of search_state.
INSERT INTO "search_state" ("id", "indexed") VALUES (1, 0);
