CREATE TABLE "groups" (
	"name" text PRIMARY KEY NOT NULL,
	"owner" text NOT NULL,
	"created" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "memberships" (
	"grp" text NOT NULL,
	"user" text NOT NULL,
	"joined" bigint NOT NULL,
	CONSTRAINT "memberships_grp_user_pk" PRIMARY KEY("grp","user")
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"mid" bigint PRIMARY KEY NOT NULL,
	"ts" bigint NOT NULL,
	"sender" text NOT NULL,
	"grp" text,
	"to_user" text,
	"conv" text NOT NULL,
	"cid" "bytea",
	"text" "bytea",
	"file_name" "bytea",
	"file_type" "bytea",
	"file_data" "bytea",
	"size" integer DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "tcpchat_seq" (
	"id" integer PRIMARY KEY NOT NULL,
	"seq" bigint DEFAULT 0 NOT NULL,
	"last_mid" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "tcpchat_seq_one_row" CHECK ("tcpchat_seq"."id" = 1)
);
--> statement-breakpoint
CREATE TABLE "tokens" (
	"hash" text PRIMARY KEY NOT NULL,
	"user" text NOT NULL,
	"created" bigint NOT NULL,
	"expires" bigint NOT NULL,
	"id" bigint GENERATED ALWAYS AS IDENTITY (sequence name "tokens_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1)
);
--> statement-breakpoint
CREATE TABLE "users" (
	"name" text PRIMARY KEY NOT NULL,
	"pass_hash" text NOT NULL,
	"created" bigint NOT NULL
);
--> statement-breakpoint
ALTER TABLE "groups" ADD CONSTRAINT "groups_owner_users_name_fk" FOREIGN KEY ("owner") REFERENCES "public"."users"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_grp_groups_name_fk" FOREIGN KEY ("grp") REFERENCES "public"."groups"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_user_users_name_fk" FOREIGN KEY ("user") REFERENCES "public"."users"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "tokens" ADD CONSTRAINT "tokens_user_users_name_fk" FOREIGN KEY ("user") REFERENCES "public"."users"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "groups_owner" ON "groups" USING btree ("owner");--> statement-breakpoint
CREATE INDEX "memberships_user" ON "memberships" USING btree ("user");--> statement-breakpoint
CREATE INDEX "messages_conv" ON "messages" USING btree ("conv","mid","size");--> statement-breakpoint
CREATE UNIQUE INDEX "messages_sender_cid" ON "messages" USING btree ("sender","cid") WHERE "messages"."cid" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_dm_to" ON "messages" USING btree ("to_user","mid","size") WHERE "messages"."to_user" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "messages_dm_from" ON "messages" USING btree ("sender","mid","size","to_user") WHERE "messages"."to_user" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "tokens_user" ON "tokens" USING btree ("user");--> statement-breakpoint
CREATE INDEX "tokens_expires" ON "tokens" USING btree ("expires");--> statement-breakpoint
-- Hand-written: the one row of tcpchat_seq (schema-pg.ts), which every commit updates.
INSERT INTO "tcpchat_seq" ("id", "seq", "last_mid") VALUES (1, 0, 0);
