// yuxi-config-injector end to end: the real binary over HTTPS on loopback, with a CA the
// test makes with `openssl`. curl (--cacert) sends reviews as any client would; a TLS
// client of the test's own holds kept-alive connections across a certificate rotation,
// sends oversized, slow and hostile requests, and fills the connection cap. After each
// abuse the server still answers, and nothing was caught at a callback's boundary.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <poll.h>

#include <algorithm>
#include <csignal>
#include <iostream>
#include <sstream>
#include <thread>

#include "injector_test_support.hpp"
#include "support/exposition_parser.hpp"

namespace yuxi::config::test {
namespace {

using nlohmann::json;

json api_review(const std::string& uid = "it-1") {
    const json pod = json::parse(R"({
      "metadata": {"generateName": "yuxi-api-", "namespace": "yuxi",
                   "annotations": {"config.yuxi.dev/inject": "true"}},
      "spec": {"securityContext": {"runAsUser": 10002, "fsGroup": 10001},
               "containers": [{"name": "api", "image": "yuxi-know-api"}]}})");
    return {{"apiVersion", "admission.k8s.io/v1"},
            {"kind", "AdmissionReview"},
            {"request",
             {{"uid", uid},
              {"kind", {{"group", ""}, {"version", "v1"}, {"kind", "Pod"}}},
              {"resource", {{"group", ""}, {"version", "v1"}, {"resource", "pods"}}},
              {"operation", "CREATE"},
              {"namespace", "yuxi"},
              {"object", pod}}}};
}

class InjectorHttpsTest : public ::testing::Test {
  protected:
    void SetUp() override {
        // Writing to a connection the server has cut off must fail the write, not the test.
        std::signal(SIGPIPE, SIG_IGN);
        if (!have_program("openssl") || !have_program("curl")) {
            GTEST_SKIP() << "needs the openssl and curl commands";
        }
        dir_ = temp_dir("injector");
        ASSERT_TRUE(make_ca(dir_, "ca1"));
        ASSERT_TRUE(make_server_cert(dir_, "ca1", "server1"));
        // As a Secret volume looks: files behind a ..data link that the kubelet swaps.
        fs::create_directories(dir_ / "tls" / "v1");
        fs::copy_file(dir_ / "server1.crt", dir_ / "tls" / "v1" / "tls.crt");
        fs::copy_file(dir_ / "server1.key", dir_ / "tls" / "v1" / "tls.key");
        fs::create_directory_symlink("v1", dir_ / "tls" / "..data");
        fs::create_symlink("..data/tls.crt", dir_ / "tls" / "tls.crt");
        fs::create_symlink("..data/tls.key", dir_ / "tls" / "tls.key");
    }

    void TearDown() override {
        injector_.stop();
        if (HasFailure() && !dir_.empty()) {
            std::cerr << "injector log:\n" << injector_.log().substr(0, 20000);
        }
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    std::vector<std::string> tls_args() const {
        return {"--tls-cert", (dir_ / "tls" / "tls.crt").string(), "--tls-key",
                (dir_ / "tls" / "tls.key").string()};
    }

    void start(std::vector<std::string> more = {}) {
        std::vector<std::string> args = tls_args();
        args.insert(args.end(), more.begin(), more.end());
        ASSERT_TRUE(injector_.start(YUXI_INJECTOR_BIN, args, dir_, dir_ / "ca1.crt"))
            << injector_.log();
    }

    // curl as a client that trusts `ca`: the status code, and the body in `body`.
    // The status is what curl printed even if it then failed (a server that refuses a body
    // and closes may reset the upload after its answer was read).
    int curl(const std::string& path, const std::string& ca, std::string* body = nullptr,
             const std::string& data_file = {}, const std::vector<std::string>& headers = {}) {
        std::vector<std::string> argv = {
            "curl",       "-s", "-o",       (dir_ / "curl.body").string(),  "-w", "%{http_code}",
            "--max-time", "10", "--cacert", (dir_ / (ca + ".crt")).string()};
        if (!data_file.empty()) {
            argv.insert(argv.end(),
                        {"-H", "Content-Type: application/json", "--data-binary", "@" + data_file});
        }
        for (const std::string& h : headers) {
            argv.insert(argv.end(), {"-H", h});
        }
        argv.push_back("https://127.0.0.1:" + std::to_string(injector_.port()) + path);
        const CommandResult r = run_command(argv, dir_);
        if (body != nullptr) {
            *body = read_text(dir_ / "curl.body");
        }
        return std::atoi(r.out.c_str());
    }

    Exposition scrape() {
        TlsClient c(injector_.port(), dir_ / "ca1.crt");
        const HttpResponse r = c.request("GET", "/metrics");
        EXPECT_EQ(r.status, 200);
        return parse_exposition(r.body);
    }

    // Replaces the pair as the kubelet does: a new directory, then one rename of ..data.
    void rotate_to(const std::string& name, const std::string& key_of = {}) {
        const fs::path v = dir_ / "tls" / name;
        fs::create_directories(v);
        fs::copy_file(dir_ / (name + ".crt"), v / "tls.crt");
        fs::copy_file(dir_ / ((key_of.empty() ? name : key_of) + ".key"), v / "tls.key");
        fs::create_directory_symlink(name, dir_ / "tls" / "..data_tmp");
        fs::rename(dir_ / "tls" / "..data_tmp", dir_ / "tls" / "..data");
    }

    fs::path dir_;
    InjectorProcess injector_;
};

TEST_F(InjectorHttpsTest, AnswersAReviewToAClientThatVerifiesTheCertificate) {
    start();
    const fs::path review = dir_ / "review.json";
    std::ofstream(review) << api_review("curl-1").dump();
    std::string body;
    ASSERT_EQ(curl("/mutate", "ca1", &body, review.string()), 200);
    const json answer = json::parse(body);
    EXPECT_EQ(answer["response"]["uid"], "curl-1");
    EXPECT_EQ(answer["response"]["allowed"], true);
    EXPECT_EQ(answer["response"]["patchType"], "JSONPatch");

    // A client that does not trust the CA gets no answer at all.
    ASSERT_TRUE(make_ca(dir_, "stranger"));
    EXPECT_EQ(curl("/healthz", "stranger"), 0);

    EXPECT_EQ(curl("/healthz", "ca1", &body), 200);
    EXPECT_EQ(body, "ok\n");
    EXPECT_EQ(curl("/readyz", "ca1", &body), 200);
    EXPECT_EQ(body, "ready\n");
    const Exposition e = scrape();
    EXPECT_EQ(e.value("yuxi_config_injector_patches_total"), 1);
    EXPECT_EQ(
        e.value("yuxi_config_injector_requests_total", {{"handler", "mutate"}, {"code", "200"}}),
        1);
    EXPECT_EQ(e.value("yuxi_config_injector_admission_duration_seconds_count"), 1);
    EXPECT_GT(*e.value("yuxi_config_injector_tls_certificate_expiry_timestamp_seconds"),
              static_cast<double>(std::time(nullptr)));
}

TEST_F(InjectorHttpsTest, ARotatedCertificateIsUsedWithoutARestartOrADroppedConnection) {
    start({"--tls-reload-interval", "200ms"});
    const pid_t pid = injector_.pid();
    TlsClient kept(injector_.port(), dir_ / "ca1.crt");
    ASSERT_TRUE(kept.connected());
    ASSERT_EQ(kept.request("POST", "/mutate", api_review("before").dump()).status, 200);
    const double expiry_before =
        *scrape().value("yuxi_config_injector_tls_certificate_expiry_timestamp_seconds");

    ASSERT_TRUE(make_ca(dir_, "ca2"));
    ASSERT_TRUE(make_server_cert(dir_, "ca2", "server2", 2));
    rotate_to("server2");
    EXPECT_TRUE(eventually([&] { return curl("/healthz", "ca2") == 200; }, 15s))
        << "new connections never got the new certificate";
    EXPECT_EQ(curl("/healthz", "ca1"), 0) << "the old certificate is still served";

    // The connection made before the rotation keeps its session and its answers.
    const HttpResponse after = kept.request("POST", "/mutate", api_review("after").dump());
    EXPECT_EQ(after.status, 200);
    EXPECT_EQ(json::parse(after.body)["response"]["uid"], "after");
    EXPECT_TRUE(injector_.running());
    EXPECT_EQ(injector_.pid(), pid);

    TlsClient c(injector_.port(), dir_ / "ca2.crt");
    const Exposition e = parse_exposition(c.request("GET", "/metrics").body);
    EXPECT_EQ(e.value("yuxi_config_injector_tls_reloads_total", {{"result", "ok"}}), 1);
    EXPECT_GT(*e.value("yuxi_config_injector_tls_certificate_expiry_timestamp_seconds"),
              expiry_before);
    EXPECT_NE(injector_.log().find("new connections use the new pair"), std::string::npos);
}

TEST_F(InjectorHttpsTest, APairThatDoesNotLoadLeavesTheOldOneServing) {
    start({"--tls-reload-interval", "200ms"});
    ASSERT_TRUE(make_ca(dir_, "ca2"));
    ASSERT_TRUE(make_server_cert(dir_, "ca2", "server2"));
    rotate_to("server2", "server1");  // the new certificate with the old key
    EXPECT_TRUE(eventually(
        [&] {
            return scrape().value("yuxi_config_injector_tls_reloads_total",
                                  {{"result", "failed"}}) == 1;
        },
        10s));
    EXPECT_EQ(curl("/healthz", "ca1"), 200);
    EXPECT_EQ(curl("/readyz", "ca1"), 200);
    EXPECT_NE(injector_.log().find("the key does not match the certificate"), std::string::npos);
    // The same bad pair is not tried (and counted) again; the right one is taken.
    std::this_thread::sleep_for(600ms);
    EXPECT_EQ(scrape().value("yuxi_config_injector_tls_reloads_total", {{"result", "failed"}}), 1);
    fs::remove_all(dir_ / "tls" / "server2");
    rotate_to("server2");
    EXPECT_TRUE(eventually([&] { return curl("/healthz", "ca2") == 200; }, 10s));
}

TEST_F(InjectorHttpsTest, OversizedRequestsAreRefused) {
    start({"--max-request-bytes", "64KiB"});
    // The limit holds on the announced length, before any of the body is read.
    TlsClient c(injector_.port(), dir_ / "ca1.crt");
    ASSERT_TRUE(
        c.send("POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Content-Length: 102400\r\n\r\n"));
    EXPECT_EQ(c.receive().status, 413);
    EXPECT_TRUE(c.closed_by_server(5s));
    const fs::path big = dir_ / "big.json";
    std::ofstream(big) << std::string(100 * 1024, ' ');
    // As a client that asks first (Expect: 100-continue): the refusal comes before the
    // body is sent. A client that sends the body at once may see its upload reset once the
    // server has answered and closed; what it can read then is the 413 (checked above).
    EXPECT_EQ(curl("/mutate", "ca1", nullptr, big.string(), {"Expect: 100-continue"}), 413);
    TlsClient h(injector_.port(), dir_ / "ca1.crt");
    const HttpResponse headers =
        h.request("GET", "/healthz", "", std::string(32 * 1024, 'x'));  // a 32 KiB header
    EXPECT_NE(headers.status, 200);
    EXPECT_EQ(curl("/healthz", "ca1"), 200);
}

TEST_F(InjectorHttpsTest, SlowClientsAreCutOffWhileOthersAreServed) {
    start({"--request-timeout", "1s"});
    // A connection that never starts its TLS handshake.
    const int raw = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(injector_.port());
    ASSERT_EQ(::connect(raw, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    // A handshake, then a request sent a few bytes at a time.
    TlsClient slow(injector_.port(), dir_ / "ca1.crt");
    ASSERT_TRUE(slow.connected());
    const std::string req =
        "POST /mutate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    bool cut = false;
    const auto start_time = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < req.size() && !cut; i += 2) {
        cut = !slow.send(req.substr(i, 2));
        EXPECT_EQ(curl("/healthz", "ca1"), 200);  // the loop is not held
        std::this_thread::sleep_for(100ms);
    }
    cut = cut || slow.closed_by_server(5s);
    EXPECT_TRUE(cut) << "the trickling client was never cut off";
    EXPECT_LT(std::chrono::steady_clock::now() - start_time, 10s);
    pollfd p{raw, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the silent connection was never closed";
    char ch;
    EXPECT_LE(::recv(raw, &ch, 1, 0), 0);
    ::close(raw);
    EXPECT_EQ(scrape().value("yuxi_config_injector_exceptions_total"), 0);
}

TEST_F(InjectorHttpsTest, HostileRequestsAreRefusedAndTheServerStaysUp) {
    start();
    TlsClient c(injector_.port(), dir_ / "ca1.crt");
    ASSERT_TRUE(c.connected());
    EXPECT_EQ(c.request("POST", "/mutate", "{not json").status, 400);
    EXPECT_EQ(
        c.request("POST", "/mutate", std::string(200000, '[') + std::string(200000, ']')).status,
        400);
    std::string huge = "[1";
    while (huge.size() < 1500000) {
        huge += ",1";
    }
    EXPECT_EQ(c.request("POST", "/mutate", huge + "]").status, 400);
    EXPECT_EQ(c.request("POST", "/mutate", "\xff\xfe\x00\x01").status, 400);
    EXPECT_EQ(c.request("POST", "/mutate", api_review().dump(), "text/plain").status, 415);
    EXPECT_EQ(c.request("GET", "/mutate").status, 405);
    EXPECT_EQ(c.request("GET", "/nothing").status, 404);
    json deployment = api_review("dep-1");
    deployment["request"]["kind"] = {{"group", "apps"}, {"version", "v1"}, {"kind", "Deployment"}};
    const HttpResponse wrong = c.request("POST", "/mutate", deployment.dump());
    EXPECT_EQ(wrong.status, 200);
    EXPECT_EQ(json::parse(wrong.body)["response"]["allowed"], false);

    {  // Plain HTTP to the TLS port, and bytes that are neither: closed, no answer.
        const std::vector<std::string> junks = {
            "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
            std::string("\x16\x03\x01\x00\xff", 5) + std::string(300, 'A')};
        for (const std::string& junk : junks) {
            const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            a.sin_port = htons(injector_.port());
            ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
            (void)::send(fd, junk.data(), junk.size(), MSG_NOSIGNAL);
            pollfd p{fd, POLLIN, 0};
            ASSERT_EQ(::poll(&p, 1, 5000), 1);
            char buf[64];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            EXPECT_TRUE(n <= 0 ||
                        std::string_view(buf, static_cast<std::size_t>(n)).find("HTTP/") ==
                            std::string_view::npos);
            ::close(fd);
        }
    }
    EXPECT_EQ(curl("/healthz", "ca1"), 200);
    const Exposition e = scrape();
    EXPECT_EQ(e.value("yuxi_config_injector_invalid_requests_total", {{"reason", "not_json"}}), 2);
    EXPECT_EQ(e.value("yuxi_config_injector_invalid_requests_total", {{"reason", "too_deep"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_injector_invalid_requests_total", {{"reason", "not_a_review"}}),
              1);
    EXPECT_EQ(e.value("yuxi_config_injector_invalid_requests_total", {{"reason", "content_type"}}),
              1);
    EXPECT_EQ(e.value("yuxi_config_injector_refusals_total", {{"reason", "not_a_pod"}}), 1);
    EXPECT_EQ(e.value("yuxi_config_injector_exceptions_total"), 0);
}

TEST_F(InjectorHttpsTest, ConnectionsOverTheCapWaitForASlot) {
    start({"--max-connections", "3"});
    std::vector<std::unique_ptr<TlsClient>> held;
    for (int i = 0; i < 3; ++i) {
        held.push_back(std::make_unique<TlsClient>(injector_.port(), dir_ / "ca1.crt"));
        ASSERT_TRUE(held.back()->connected());
    }
    {  // Not accepted: its handshake gets no answer while three are open.
        TlsClient over(injector_.port(), dir_ / "ca1.crt", 1s);
        EXPECT_FALSE(over.connected());
    }
    held.pop_back();
    TlsClient next(injector_.port(), dir_ / "ca1.crt", 10s);
    ASSERT_TRUE(next.connected());
    const Exposition e = parse_exposition(next.request("GET", "/metrics").body);
    EXPECT_GE(e.value("yuxi_config_injector_connections_at_limit_total"), 1);
    EXPECT_LE(e.value("yuxi_config_injector_connections"), 3);
}

TEST_F(InjectorHttpsTest, TheMetricsPortIsPlainAndHasNoWebhook) {
    const std::uint16_t metrics_port = free_port();
    start({"--metrics-listen", "127.0.0.1:" + std::to_string(metrics_port)});
    const std::string base = "http://127.0.0.1:" + std::to_string(metrics_port);
    CommandResult r = run_command(
        {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/metrics"}, dir_);
    EXPECT_EQ(r.out, "200");
    r = run_command(
        {"curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H",
         "Content-Type: application/json", "--data-binary", api_review().dump(), base + "/mutate"},
        dir_);
    EXPECT_EQ(r.out, "404");
}

TEST_F(InjectorHttpsTest, StopsCleanlyOnSigterm) {
    start({"--log-format", "json"});
    const fs::path review = dir_ / "review.json";
    std::ofstream(review) << api_review().dump();
    ASSERT_EQ(curl("/mutate", "ca1", nullptr, review.string()), 200);
    EXPECT_EQ(injector_.terminate(), 0);
    // Every line of the JSON log is one JSON object with the four fields.
    std::istringstream lines(injector_.log());
    std::string line;
    int n = 0;
    while (std::getline(lines, line)) {
        const json j = json::parse(line, nullptr, false);
        ASSERT_TRUE(j.is_object()) << line;
        EXPECT_TRUE(j.contains("ts") && j.contains("level") && j.contains("logger") &&
                    j.contains("msg"));
        ++n;
    }
    EXPECT_GE(n, 3);  // listening, injected, stopping
}

TEST_F(InjectorHttpsTest, CommandLineErrorsAreOneLineAndExitTwo) {
    CommandResult r = run_command({YUXI_INJECTOR_BIN, "--bogus"}, dir_);
    EXPECT_EQ(r.code, 2);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("unknown flag '--bogus'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("--help"), std::string::npos) << r.err;
    r = run_command({YUXI_INJECTOR_BIN}, dir_);
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("--tls-cert is required"), std::string::npos) << r.err;
    r = run_command({YUXI_INJECTOR_BIN, "--help"}, dir_);
    EXPECT_EQ(r.code, 0);
    EXPECT_NE(r.out.find("--tls-reload-interval"), std::string::npos);
    r = run_command({YUXI_INJECTOR_BIN, "--version"}, dir_);
    EXPECT_EQ(r.code, 0);
    EXPECT_TRUE(r.out.starts_with("yuxi-config-injector ")) << r.out;
    // A pair that does not load at start is exit 1, naming the file, never the key.
    r = run_command(
        {YUXI_INJECTOR_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port()), "--tls-cert",
         (dir_ / "server1.crt").string(), "--tls-key", (dir_ / "ca1.key").string()},
        dir_);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("the key does not match the certificate"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("PRIVATE KEY"), std::string::npos);
    r = run_command(
        {YUXI_INJECTOR_BIN, "--listen", "127.0.0.1:" + std::to_string(free_port()), "--tls-cert",
         (dir_ / "missing.crt").string(), "--tls-key", (dir_ / "server1.key").string()},
        dir_);
    EXPECT_EQ(r.code, 1);
    EXPECT_NE(r.err.find("cannot read"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace yuxi::config::test
