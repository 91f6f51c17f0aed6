CREATE TABLE `bans` (
	`user` text PRIMARY KEY NOT NULL,
	`reason` text DEFAULT '' NOT NULL,
	`at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `tcpchat_meta` (
	`key` text PRIMARY KEY NOT NULL,
	`value` integer NOT NULL
);
