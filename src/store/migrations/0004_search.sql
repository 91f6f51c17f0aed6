CREATE TABLE `search_state` (
	`id` integer PRIMARY KEY NOT NULL,
	`indexed` integer NOT NULL
);
--> statement-breakpoint
-- Hand-written: the search index (schema.ts, searchState). External content (the text is read
-- from messages), trigram tokens (parts of words, any script); secure-delete, so that removing a
-- deleted message's text takes its tokens out of the index instead of marking them deleted.
CREATE VIRTUAL TABLE `messages_fts` USING fts5(`text`, content='messages', content_rowid='mid', tokenize='trigram');--> statement-breakpoint
INSERT INTO `messages_fts` (`messages_fts`, `rank`) VALUES ('secure-delete', 1);--> statement-breakpoint
INSERT INTO `search_state` (`id`, `indexed`) VALUES (1, 0);
