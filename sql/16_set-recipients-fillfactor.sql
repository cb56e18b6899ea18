-- Every Mailjet event that moves a message forward rewrites its recipient's status, which no index
-- covers: with room left on the page, the new row version stays there and no index entry is written
-- (a HOT update) instead of one in each of the table's five indexes. The room must hold the new
-- versions of one callback's recipients (messages sent together have neighbouring rows and their
-- events come together), whose old versions cannot be pruned before it commits: at 80 % only a
-- third of such updates were HOT, at 60 % four fifths. Only pages written from now on keep it.
alter table email_recipients set (fillfactor = 60);
