package load

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/stellaops/convert/pipeline"
)

// TestCheckRLS: a table with row-level security is writable by its owner (without FORCE) and by
// a BYPASSRLS role; an ordinary role, or the owner under FORCE, is refused with the table named.
func TestCheckRLS(t *testing.T) {
	pool := testPool(t)
	ctx := t.Context()
	if _, err := pool.Exec(ctx, `CREATE SCHEMA r;
CREATE TABLE r.t (tenant_id text);
ALTER TABLE r.t ENABLE ROW LEVEL SECURITY;
CREATE POLICY p ON r.t USING (tenant_id = current_setting('app.tenant_id'));
DROP ROLE IF EXISTS convert_loader_test; CREATE ROLE convert_loader_test LOGIN;
GRANT USAGE ON SCHEMA r TO convert_loader_test; GRANT ALL ON r.t TO convert_loader_test`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = pool.Exec(t.Context(), `DROP OWNED BY convert_loader_test; DROP ROLE IF EXISTS convert_loader_test`)
	})
	tables := []pipeline.Table{{Schema: "r", Name: "t"}}
	if err := CheckRLS(ctx, pool, tables); err != nil {
		t.Fatalf("superuser: %v", err)
	}
	u, _ := url.Parse(pool.Config().ConnString())
	u.User = url.User("convert_loader_test")
	loader, err := pgxpool.New(ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer loader.Close()
	var rls *RLSError
	if err := CheckRLS(ctx, loader, tables); !errors.As(err, &rls) || !strings.Contains(err.Error(), "r.t") {
		t.Fatalf("ordinary role: %v, want an RLSError naming r.t", err)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE r.t OWNER TO convert_loader_test`); err != nil {
		t.Fatal(err)
	}
	if err := CheckRLS(ctx, loader, tables); err != nil {
		t.Fatalf("owner without FORCE: %v", err)
	}
	if _, err := pool.Exec(ctx, `ALTER TABLE r.t FORCE ROW LEVEL SECURITY`); err != nil {
		t.Fatal(err)
	}
	if err := CheckRLS(ctx, loader, tables); !errors.As(err, &rls) {
		t.Fatalf("owner under FORCE: %v, want an RLSError", err)
	}
}
