CREATE TABLE "dm_peers" (
	"user" text NOT NULL,
	"peer" text NOT NULL,
	"conv" text NOT NULL,
	CONSTRAINT "dm_peers_user_peer_pk" PRIMARY KEY("user","peer")
);
--> statement-breakpoint
CREATE TABLE "mentions" (
	"user" text NOT NULL,
	"conv" text NOT NULL,
	"mid" bigint NOT NULL,
	CONSTRAINT "mentions_user_conv_mid_pk" PRIMARY KEY("user","conv","mid")
);
--> statement-breakpoint
CREATE TABLE "reactions" (
	"mid" bigint NOT NULL,
	"user" text NOT NULL,
	"emoji" "bytea" NOT NULL,
	"at" bigint NOT NULL,
	CONSTRAINT "reactions_mid_user_emoji_pk" PRIMARY KEY("mid","user","emoji")
);
--> statement-breakpoint
CREATE TABLE "reads" (
	"user" text NOT NULL,
	"conv" text NOT NULL,
	"mid" bigint NOT NULL,
	CONSTRAINT "reads_user_conv_pk" PRIMARY KEY("user","conv")
);
--> statement-breakpoint
DROP INDEX "messages_conv";--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "kind" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "ref" bigint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "about" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "edited" bigint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "deleted" bigint;--> statement-breakpoint
CREATE INDEX "mentions_mid" ON "mentions" USING btree ("mid");--> statement-breakpoint
CREATE INDEX "messages_edits" ON "messages" USING btree ("ref") WHERE "messages"."kind" = 'edit';--> statement-breakpoint
CREATE INDEX "messages_conv" ON "messages" USING btree ("conv","mid","size","sender","kind","deleted");--> statement-breakpoint
-- Hand-written, as in the SQLite migration 0003: the direct conversations of earlier messages, and
-- what was stored before read markers existed counts as read.
INSERT INTO "dm_peers" ("user", "peer", "conv") SELECT DISTINCT "sender", "to_user", "conv" FROM "messages" WHERE "to_user" IS NOT NULL ON CONFLICT DO NOTHING;--> statement-breakpoint
INSERT INTO "dm_peers" ("user", "peer", "conv") SELECT DISTINCT "to_user", "sender", "conv" FROM "messages" WHERE "to_user" IS NOT NULL ON CONFLICT DO NOTHING;--> statement-breakpoint
INSERT INTO "reads" ("user", "conv", "mid") SELECT "user", 'g:' || "grp", (SELECT "last_mid" FROM "tcpchat_seq" WHERE "id" = 1) FROM "memberships" ON CONFLICT DO NOTHING;--> statement-breakpoint
INSERT INTO "reads" ("user", "conv", "mid") SELECT "user", "conv", (SELECT "last_mid" FROM "tcpchat_seq" WHERE "id" = 1) FROM "dm_peers" ON CONFLICT DO NOTHING;
