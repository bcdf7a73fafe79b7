// PostgreSQL with least privilege and TLS (docs/security.md): the roles of
// deploy/sql/roles.sql applied by `schema apply --roles` give the agent reads (and the
// relay's trim) and the admin writes, and nothing more; the agent and yuxi-configctl
// connect with sslmode=verify-full to a private server whose certificate a private CA
// (made by openssl in the test) signed, with a client certificate, and fail clearly with
// the wrong CA.
#include <cstdlib>
#include <fstream>

#include "database_test_support.hpp"

namespace yuxi::config::test {
namespace {

struct CtlRun {
    int status = -1;
    std::string out;
};

// yuxi-configctl with `args` and `env` (NAME=value) added to the environment; stdout and
// stderr together.
CtlRun ctl(const std::vector<std::string>& args, const std::vector<std::string>& env) {
    std::string cmd;
    for (const std::string& e : env) {
        cmd += shell_quote(e) + " ";
    }
    cmd = "env " + cmd + YUXI_CONFIGCTL;
    for (const std::string& a : args) {
        cmd += " " + shell_quote(a);
    }
    cmd += " 2>&1";
    CtlRun r;
    FILE* p = ::popen(cmd.c_str(), "r");
    if (p == nullptr) {
        return r;
    }
    char buf[4096];
    while (std::fgets(buf, sizeof buf, p) != nullptr) {
        r.out += buf;
    }
    const int status = ::pclose(p);
    r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

// The SQLSTATE a statement fails with as `url`'s user, or "" if it succeeds.
std::string sqlstate_of(const std::string& url, const std::string& sql) {
    Pg pg(url);
    return pg.try_exec(sql).sqlstate;
}

class RolesTest : public ::testing::Test {
  protected:
    void SetUp() override {
        const auto url = env_var("YUXI_TEST_DATABASE_URL");
        if (!url) {
            GTEST_SKIP() << "YUXI_TEST_DATABASE_URL is not set (scripts/test-servers)";
        }
        db_.emplace(*url, false);
        dir_ = temp_dir("roles");
    }
    void TearDown() override {
        agent_.kill();
        unlink_segment(segment_);
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::optional<TestDatabase> db_;
    fs::path dir_;
    std::string segment_ = unique_segment("roles");
    Agent agent_;
};

TEST_F(RolesTest, TheAgentReadsTheAdminWritesAndNeitherMore) {
    const std::vector<std::string> as_owner = {"DATABASE_URL=" + db_->url()};
    CtlRun r = ctl({"schema", "apply", "--roles", "--sql-dir", YUXI_SQL_DIR}, as_owner);
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_NE(r.out.find("applied roles.sql"), std::string::npos) << r.out;
    // Idempotent: a second run changes nothing and fails on nothing.
    r = ctl({"schema", "apply", "--roles", "--sql-dir", YUXI_SQL_DIR}, as_owner);
    ASSERT_EQ(r.status, 0) << r.out;

    Pg owner(db_->url());
    // Login roles of the operator's, granted the two roles (the server's, not the
    // database's: they may exist from an earlier run).
    owner.exec(
        "DO $$ BEGIN CREATE ROLE yuxi_test_agent_login LOGIN; EXCEPTION WHEN duplicate_object "
        "THEN NULL; END $$; GRANT yuxi_config_agent TO yuxi_test_agent_login;"
        "DO $$ BEGIN CREATE ROLE yuxi_test_admin_login LOGIN; EXCEPTION WHEN duplicate_object "
        "THEN NULL; END $$; GRANT yuxi_config_admin TO yuxi_test_admin_login;");
    const std::string agent_url = make_url(db_->fields(), db_->name(), "yuxi_test_agent_login");
    const std::string admin_url = make_url(db_->fields(), db_->name(), "yuxi_test_admin_login");

    // The admin writes through yuxi-configctl, and the change log says who.
    r = ctl({"set", "embed_model", "\"bge-m3\""}, {"DATABASE_URL=" + admin_url});
    ASSERT_EQ(r.status, 0) << r.out;
    EXPECT_EQ(owner.scalar("SELECT changed_by FROM yuxi_config_changes ORDER BY revision DESC "
                           "LIMIT 1"),
              "yuxi_test_admin_login");
    EXPECT_EQ(ctl({"history", "embed_model"}, {"DATABASE_URL=" + admin_url}).status, 0);
    EXPECT_EQ(sqlstate_of(admin_url, "DROP TABLE system_configs"), "42501");
    EXPECT_EQ(sqlstate_of(admin_url, "CREATE TABLE evil (x int)"), "42501");

    // The agent serves the tables under its role.
    agent_.start(agent_url, segment_, dir_ / "agent.log", {"--http", "127.0.0.1:0"});
    auto c = open_when_ready(segment_);
    ASSERT_TRUE(c) << agent_.log();
    expect_converged(*c, owner);
    ASSERT_EQ(ctl({"set", "top_k", "5"}, {"DATABASE_URL=" + admin_url}).status, 0);
    expect_converged(*c, owner);
    // ... and can do what the relay's log trim does, and nothing that writes configuration.
    for (const char* write : {"INSERT INTO system_configs (key, value) VALUES ('x', '1')",
                              "UPDATE global_metadata SET content = '{}'",
                              "INSERT INTO yuxi_config_changes (namespace, key, op) VALUES "
                              "('config', 'x', 'D')",
                              "TRUNCATE system_configs"}) {
        EXPECT_EQ(sqlstate_of(agent_url, write), "42501") << write;
    }
    EXPECT_EQ(sqlstate_of(agent_url,
                          "BEGIN; SELECT pg_advisory_xact_lock(yuxi_config_lock_key()); "
                          "DELETE FROM yuxi_config_changes WHERE revision < 0; "
                          "UPDATE yuxi_config_log_state SET trimmed_through = trimmed_through; "
                          "ROLLBACK"),
              "");
    EXPECT_FALSE(agent_.log_contains("permission denied"));
}

// A certificate authority, a server certificate for 127.0.0.1 and localhost, and a client
// certificate for the user `postgres`, made by openssl into `dir`.
bool make_certificates(const fs::path& dir, const std::string& ca_name) {
    const std::string d = shell_quote(dir.string());
    const std::string script =
        "set -e; cd " + d +
        "; openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=" + ca_name +
        "' -keyout ca.key -out ca.crt >/dev/null 2>&1"
        "; openssl req -newkey rsa:2048 -nodes -subj '/CN=localhost' -keyout server.key "
        "-out server.csr >/dev/null 2>&1"
        "; printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > san.ext"
        "; openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-extfile san.ext -out server.crt >/dev/null 2>&1"
        "; openssl req -newkey rsa:2048 -nodes -subj '/CN=postgres' -keyout client.key "
        "-out client.csr >/dev/null 2>&1"
        "; openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 "
        "-out client.crt >/dev/null 2>&1; chmod 600 client.key";
    return std::system(script.c_str()) == 0;
}

TEST(TlsTest, VerifyFullWithAPrivateCaAndAClientCertificate) {
    if (const std::string why = PrivateServer::unavailable(); !why.empty()) {
        GTEST_SKIP() << why;
    }
    PrivateServer server;
    server.make_dir();
    const fs::path certs = server.dir() / "certs";
    fs::create_directories(certs);
    ASSERT_TRUE(make_certificates(certs, "yuxi-test-ca"));
    const fs::path other = temp_dir("other-ca");
    ASSERT_TRUE(make_certificates(other, "someone-else"));
    for (const char* f : {"server.key", "server.crt", "ca.crt"}) {
        PrivateServer::give_to_server(certs / f, 0600);
    }
    PrivateServer::give_to_server(certs, 0700);
    // TLS only, and the client proves itself with its certificate (CN = the user).
    const std::string hba =
        "local all all trust\n"
        "hostssl all all 127.0.0.1/32 cert clientcert=verify-full\n"
        "host all all 127.0.0.1/32 reject\n";
    ASSERT_TRUE(server.start(hba, "-c ssl=on -c ssl_cert_file=" + (certs / "server.crt").string() +
                                      " -c ssl_key_file=" + (certs / "server.key").string() +
                                      " -c ssl_ca_file=" + (certs / "ca.crt").string()));
    // The client's files, readable by us (the test runs the agent as itself).
    const fs::path mine = temp_dir("client-tls");
    for (const char* f : {"client.crt", "client.key", "ca.crt"}) {
        fs::copy_file(certs / f, mine / f);
        if (std::string_view(f) == "client.key") {
            ::chmod((mine / f).c_str(), 0600);
        }
    }
    const auto url = [&](const fs::path& ca) {
        return "postgresql://postgres@127.0.0.1:" + std::to_string(server.port()) +
               "/postgres?sslmode=verify-full&sslrootcert=" + ca.string() +
               "&sslcert=" + (mine / "client.crt").string() +
               "&sslkey=" + (mine / "client.key").string();
    };
    const std::string good = url(mine / "ca.crt");
    const std::string wrong = url(other / "ca.crt");

    CtlRun r = ctl({"schema", "apply", "--sql-dir", YUXI_SQL_DIR}, {"DATABASE_URL=" + good});
    ASSERT_EQ(r.status, 0) << r.out;
    r = ctl({"set", "embed_model", "\"over-tls\""}, {"DATABASE_URL=" + good});
    ASSERT_EQ(r.status, 0) << r.out;

    // The wrong CA: refused, with the reason, and nothing is written.
    r = ctl({"set", "embed_model", "\"unverified\""}, {"DATABASE_URL=" + wrong});
    EXPECT_EQ(r.status, 4) << r.out;
    EXPECT_NE(r.out.find("certificate verify failed"), std::string::npos) << r.out;

    // The agent over verify-full.
    const fs::path logs = temp_dir("tls-agent");
    const std::string segment = unique_segment("tls");
    Agent agent;
    agent.start(good, segment, logs / "agent.log", {"--http", "127.0.0.1:0"});
    auto c = open_when_ready(segment);
    ASSERT_TRUE(c) << agent.log();
    EXPECT_TRUE(
        until_published(*c, [&] { return c->get("embed_model").value_or("") == "\"over-tls\""; }));
    agent.kill();
    unlink_segment(segment);

    // An agent given the wrong CA never publishes, and says why.
    Agent refused;
    refused.start(wrong, segment, logs / "refused.log", {"--http", "127.0.0.1:0"});
    EXPECT_TRUE(eventually([&] { return refused.log_contains("certificate verify failed"); }))
        << refused.log();
    EXPECT_FALSE(fs::exists(detail::segment_path(segment)));
    refused.kill();
    unlink_segment(segment);
    std::error_code ec;
    fs::remove_all(other, ec);
    fs::remove_all(mine, ec);
    fs::remove_all(logs, ec);
}

}  // namespace
}  // namespace yuxi::config::test
