CREATE TABLE `file_chunks` (
	`file` integer NOT NULL,
	`off` integer NOT NULL,
	`data` blob NOT NULL,
	PRIMARY KEY(`file`, `off`)
);
--> statement-breakpoint
CREATE TABLE `files` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`sha256` text NOT NULL,
	`size` integer NOT NULL,
	`done` integer DEFAULT 0 NOT NULL,
	`created` integer NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX `files_sha256` ON `files` (`sha256`) WHERE "files"."done" = 1;--> statement-breakpoint
CREATE TABLE `uploads` (
	`id` text PRIMARY KEY NOT NULL,
	`user` text NOT NULL,
	`size` integer NOT NULL,
	`sha256` text NOT NULL,
	`received` integer DEFAULT 0 NOT NULL,
	`done` integer DEFAULT 0 NOT NULL,
	`file` integer NOT NULL,
	`touched` integer NOT NULL
);
--> statement-breakpoint
CREATE INDEX `uploads_user` ON `uploads` (`user`,`sha256`);--> statement-breakpoint
CREATE INDEX `uploads_touched` ON `uploads` (`touched`);--> statement-breakpoint
CREATE INDEX `uploads_file` ON `uploads` (`file`);--> statement-breakpoint
ALTER TABLE `messages` ADD `file_id` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `file_size` integer;--> statement-breakpoint
ALTER TABLE `messages` ADD `file_sha` text;--> statement-breakpoint
CREATE INDEX `messages_file` ON `messages` (`file_id`) WHERE "messages"."file_id" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `messages_sender_file` ON `messages` (`sender`,`file_size`) WHERE "messages"."file_id" IS NOT NULL;