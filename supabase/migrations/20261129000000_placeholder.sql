-- placeholder, replaced by the schema migrations
select 1;
