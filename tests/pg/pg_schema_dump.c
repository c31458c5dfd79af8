/*
 * pg_schema_dump — prints store_pg_schema_sql(), the PostgreSQL schema of
 * src/store/store_schema_pg.c, for tests/pg/schema_check.py to load with psql.
 */
#include <stdio.h>

const char *store_pg_schema_sql(void);

int main(void)
{
    fputs(store_pg_schema_sql(), stdout);
    fputc('\n', stdout);
    return 0;
}
