-- leading comment; with a semicolon
create table public.t1 (a text default 'x;y', b text default E'it''s; ok', "we;ird" int);
create function public.f1() returns int language plpgsql as $body$ begin return 1; end $body$;
/* block; /* nested; */ comment */ select 1;
create function public.f2() returns int language sql as $$ select 2 $$;;
create function public.f3(a int) returns int language sql
begin atomic
  select a + 1;
  select a + 2;
end;
select ($x$ ; $x$);
do $$ begin perform 1; end $$;
create view public.v1 as select (1 + (2 * 3)) as x;
select 'a'
;
select $q$x$q$ ;
-- trailing comment only
