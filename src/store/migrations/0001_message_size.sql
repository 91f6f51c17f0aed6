DROP INDEX `messages_conv`;--> statement-breakpoint
DROP INDEX `messages_dm_to`;--> statement-breakpoint
DROP INDEX `messages_dm_from`;--> statement-breakpoint
ALTER TABLE `messages` ADD `size` integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- Hand-written: the size of the messages stored before this migration, as messageSize()
-- in src/store/store.ts computes it for new ones. length() of a BLOB reads no overflow page.
UPDATE `messages` SET `size` = 96 + coalesce(length(CAST(`text` AS BLOB)), 0) + coalesce(length(CAST(`cid` AS BLOB)), 0)
  + coalesce(length(`file_data`), 0) + coalesce(length(CAST(`file_name` AS BLOB)), 0) + coalesce(length(CAST(`file_type` AS BLOB)), 0);--> statement-breakpoint
CREATE INDEX `messages_conv` ON `messages` (`conv`,`mid`,`size`);--> statement-breakpoint
CREATE INDEX `messages_dm_to` ON `messages` (`to_user`,`mid`,`size`) WHERE "messages"."to_user" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `messages_dm_from` ON `messages` (`sender`,`mid`,`size`,`to_user`) WHERE "messages"."to_user" IS NOT NULL;--> statement-breakpoint
CREATE INDEX `groups_owner` ON `groups` (`owner`);--> statement-breakpoint
CREATE INDEX `tokens_expires` ON `tokens` (`expires`);