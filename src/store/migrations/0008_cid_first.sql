DROP INDEX `messages_sender_cid`;--> statement-breakpoint
CREATE UNIQUE INDEX `messages_cid_sender` ON `messages` (`cid`,`sender`) WHERE "messages"."cid" IS NOT NULL;