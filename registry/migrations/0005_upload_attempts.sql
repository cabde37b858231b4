-- How many times a worker started on an upload: 1 when it ran once; more when a worker
-- died or storage failed and the job was tried again.
ALTER TABLE uploads ADD COLUMN attempts integer NOT NULL DEFAULT 0;
