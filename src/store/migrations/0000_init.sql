CREATE TABLE `groups` (
	`name` text PRIMARY KEY NOT NULL,
	`owner` text NOT NULL,
	`created` integer NOT NULL,
	FOREIGN KEY (`owner`) REFERENCES `users`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `memberships` (
	`grp` text NOT NULL,
	`user` text NOT NULL,
	`joined` integer NOT NULL,
	PRIMARY KEY(`grp`, `user`),
	FOREIGN KEY (`grp`) REFERENCES `groups`(`name`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`user`) REFERENCES `users`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `memberships_user` ON `memberships` (`user`);--> statement-breakpoint
CREATE TABLE `messages` (
	`mid` integer PRIMARY KEY NOT NULL,
	`ts` integer NOT NULL,
	`sender` text NOT NULL,
	`grp` text,
	`to_user` text,
	`conv` text NOT NULL,
	`cid` text,
	`text` text,
	`file_name` text,
	`file_type` text,
	`file_data` blob
);
--> statement-breakpoint
CREATE INDEX `messages_conv` ON `messages` (`conv`,`mid`);--> statement-breakpoint
CREATE UNIQUE INDEX `messages_sender_cid` ON `messages` (`sender`,`cid`) WHERE "messages"."cid" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `messages_dm_to` ON `messages` (`to_user`,`mid`) WHERE "messages"."to_user" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `messages_dm_from` ON `messages` (`sender`,`mid`) WHERE "messages"."to_user" IS NOT NULL;--> statement-breakpoint
CREATE TABLE `tokens` (
	`hash` text PRIMARY KEY NOT NULL,
	`user` text NOT NULL,
	`created` integer NOT NULL,
	`expires` integer NOT NULL,
	FOREIGN KEY (`user`) REFERENCES `users`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `tokens_user` ON `tokens` (`user`);--> statement-breakpoint
CREATE TABLE `users` (
	`name` text PRIMARY KEY NOT NULL,
	`pass_hash` text NOT NULL,
	`created` integer NOT NULL
);
