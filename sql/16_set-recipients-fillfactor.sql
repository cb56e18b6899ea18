-- Every Mailjet event that moves a message forward rewrites its recipient's status, which no index
-- covers: with room left on the page, the new row version stays there and no index entry is written
-- (a HOT update) instead of one in each of the table's five indexes. Only pages written from now on
-- keep a fifth free.
alter table email_recipients set (fillfactor = 80);
