CREATE TABLE "bans" (
	"user" text PRIMARY KEY NOT NULL,
	"reason" text DEFAULT '' NOT NULL,
	"at" bigint NOT NULL
);
