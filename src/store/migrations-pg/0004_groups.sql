CREATE TABLE "blocks" (
	"user" text NOT NULL,
	"blocked" text NOT NULL,
	"at" bigint NOT NULL,
	CONSTRAINT "blocks_user_blocked_pk" PRIMARY KEY("user","blocked")
);
--> statement-breakpoint
CREATE TABLE "group_bans" (
	"grp" text NOT NULL,
	"user" text NOT NULL,
	"by" text NOT NULL,
	"at" bigint NOT NULL,
	CONSTRAINT "group_bans_grp_user_pk" PRIMARY KEY("grp","user")
);
--> statement-breakpoint
CREATE TABLE "invites" (
	"grp" text NOT NULL,
	"user" text NOT NULL,
	"by" text NOT NULL,
	"at" bigint NOT NULL,
	CONSTRAINT "invites_grp_user_pk" PRIMARY KEY("grp","user")
);
--> statement-breakpoint
ALTER TABLE "groups" ADD COLUMN "public" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE "groups" ADD COLUMN "topic" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "groups" ADD COLUMN "description" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "role" text DEFAULT 'member' NOT NULL;--> statement-breakpoint
ALTER TABLE "memberships" ADD COLUMN "muted" bigint;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "target" text;--> statement-breakpoint
ALTER TABLE "messages" ADD COLUMN "until" bigint;--> statement-breakpoint
ALTER TABLE "users" ADD COLUMN "dm_policy" text DEFAULT 'anyone' NOT NULL;--> statement-breakpoint
CREATE INDEX "invites_user" ON "invites" USING btree ("user");--> statement-breakpoint
CREATE INDEX "messages_about" ON "messages" USING btree ("ref") WHERE "messages"."kind" IN ('edit', 'delete', 'react', 'unreact');--> statement-breakpoint
CREATE INDEX "messages_target" ON "messages" USING btree ("target","mid","size") WHERE "messages"."target" IS NOT NULL;--> statement-breakpoint
-- Hand-written: a group's owner was a member like any other; now their membership says so.
UPDATE "memberships" SET "role" = 'owner' FROM "groups" WHERE "groups"."name" = "memberships"."grp" AND "groups"."owner" = "memberships"."user";
