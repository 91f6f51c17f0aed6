CREATE TABLE `dm_peers` (
	`user` text NOT NULL,
	`peer` text NOT NULL,
	`conv` text NOT NULL,
	PRIMARY KEY(`user`, `peer`)
);
--> statement-breakpoint
CREATE TABLE `mentions` (
	`user` text NOT NULL,
	`conv` text NOT NULL,
	`mid` integer NOT NULL,
	PRIMARY KEY(`user`, `conv`, `mid`)
);
--> statement-breakpoint
CREATE INDEX `mentions_mid` ON `mentions` (`mid`);--> statement-breakpoint
CREATE TABLE `reactions` (
	`mid` integer NOT NULL,
	`user` text NOT NULL,
	`emoji` text NOT NULL,
	`at` integer NOT NULL,
	PRIMARY KEY(`mid`, `user`, `emoji`)
);
--> statement-breakpoint
CREATE TABLE `reads` (
	`user` text NOT NULL,
	`conv` text NOT NULL,
	`mid` integer NOT NULL,
	PRIMARY KEY(`user`, `conv`)
);
--> statement-breakpoint
DROP INDEX `messages_conv`;--> statement-breakpoint
ALTER TABLE `messages` ADD `kind` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `ref` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `about` text;--> statement-breakpoint
ALTER TABLE `messages` ADD `edited` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `deleted` integer;--> statement-breakpoint
CREATE INDEX `messages_edits` ON `messages` (`ref`) WHERE "messages"."kind" = 'edit';--> statement-breakpoint
CREATE INDEX `messages_conv` ON `messages` (`conv`,`mid`,`size`,`sender`,`kind`,`deleted`);--> statement-breakpoint
-- Hand-written: the direct conversations of the messages stored before this migration, both ways.
INSERT OR IGNORE INTO `dm_peers` (`user`, `peer`, `conv`) SELECT `sender`, `to_user`, `conv` FROM `messages` WHERE `to_user` IS NOT NULL;--> statement-breakpoint
INSERT OR IGNORE INTO `dm_peers` (`user`, `peer`, `conv`) SELECT `to_user`, `sender`, `conv` FROM `messages` WHERE `to_user` IS NOT NULL;--> statement-breakpoint
-- Hand-written: what was stored before read markers existed counts as read (no conversation starts with all its history unread).
INSERT OR IGNORE INTO `reads` (`user`, `conv`, `mid`) SELECT `user`, 'g:' || `grp`, (SELECT coalesce(max(`mid`), 0) FROM `messages`) FROM `memberships`;--> statement-breakpoint
INSERT OR IGNORE INTO `reads` (`user`, `conv`, `mid`) SELECT `user`, `conv`, (SELECT coalesce(max(`mid`), 0) FROM `messages`) FROM `dm_peers`;
