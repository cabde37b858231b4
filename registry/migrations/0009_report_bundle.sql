-- The organisation workbooks of an upload are entries of one stored object, the
-- upload's workbook bundle (a zip, entries stored uncompressed): a report row that is
-- such an entry gives the bytes of the object that are its workbook. A row without a
-- range is the whole object (summary.xlsx, summary.json, escalations.xlsx, and every
-- report written to a folder by `roster import`).
ALTER TABLE upload_reports
    ADD COLUMN byte_offset bigint,
    ADD COLUMN byte_length bigint,
    ADD CONSTRAINT upload_reports_range CHECK (
        (byte_offset IS NULL) = (byte_length IS NULL)
        AND coalesce(byte_offset >= 0 AND byte_length >= 0, true));
