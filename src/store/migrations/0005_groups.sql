CREATE TABLE `blocks` (
	`user` text NOT NULL,
	`blocked` text NOT NULL,
	`at` integer NOT NULL,
	PRIMARY KEY(`user`, `blocked`)
);
--> statement-breakpoint
CREATE TABLE `group_bans` (
	`grp` text NOT NULL,
	`user` text NOT NULL,
	`by` text NOT NULL,
	`at` integer NOT NULL,
	PRIMARY KEY(`grp`, `user`)
);
--> statement-breakpoint
CREATE TABLE `invites` (
	`grp` text NOT NULL,
	`user` text NOT NULL,
	`by` text NOT NULL,
	`at` integer NOT NULL,
	PRIMARY KEY(`grp`, `user`)
);
--> statement-breakpoint
CREATE INDEX `invites_user` ON `invites` (`user`);--> statement-breakpoint
ALTER TABLE `groups` ADD `public` integer DEFAULT 1 NOT NULL;--> statement-breakpoint
ALTER TABLE `groups` ADD `topic` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `groups` ADD `description` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `memberships` ADD `role` text DEFAULT 'member' NOT NULL;--> statement-breakpoint
ALTER TABLE `memberships` ADD `muted` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `target` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `until` integer;--> statement-breakpoint
CREATE INDEX `messages_about` ON `messages` (`ref`) WHERE "messages"."kind" IN ('edit', 'delete', 'react', 'unreact');--> statement-breakpoint
CREATE INDEX `messages_target` ON `messages` (`target`,`mid`,`size`) WHERE "messages"."target" IS NOT NULL;--> statement-breakpoint
ALTER TABLE `users` ADD `dm_policy` text DEFAULT 'anyone' NOT NULL;--> statement-breakpoint
-- Hand-written: a group's owner was a member like any other; now their membership says so.
UPDATE `memberships` SET `role` = 'owner' WHERE `user` = (SELECT `owner` FROM `groups` WHERE `groups`.`name` = `memberships`.`grp`);
