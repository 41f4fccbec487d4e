// Tests of the generated C++17 core (engine-free), built with g++ -std=c++17 -Wall -Wextra -Werror
// and libcurl. Usage:
//   tests conformance CORPUS_DIR         every expressible corpus case gets the labelled codes
//   tests unit                           retry, refresh, queue bound, version header (fake transport)
//   tests e2e BASE_URL STATE_DIR         against a real `contract-runtime serve`
//   tests queue-fill STATE_DIR N         enqueue N events offline, printing each id once queued
//   tests queue-resume BASE_URL STATE_DIR PRINTED_FILE   after a kill -9 of queue-fill: nothing
//                                        lost, nothing sent twice
//   tests faults BASE_URL STATE_DIR COUNT   a producer for tests/exactly_once.py
//   tests sign-in BASE_URL IDP_URL SUBJECT STATE_DIR   the game's own sign-in (tests/clients/sign_in.py)
// Each suite prints `ok - name` / `FAIL - name: reason` and ends with `<suite>: N passed, M failed`.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <unistd.h>

#include "contracts/all_types/all_types.hpp"
#include "contracts/game_events/contractc_curl.hpp"
#include "contracts/game_events/game_events.hpp"
#include "contracts/match_events/contractc_curl.hpp"
#include "contracts/match_events/match_events.hpp"
#include "contracts/minimal/minimal.hpp"
#include "contracts/player_profiles/player_profiles.hpp"

namespace game = contractc_game_events;
namespace match = contractc_match_events;
namespace grt = contractc_game_events::rt;

static int passed = 0;
static int failed = 0;

template <class F>
void test(const std::string& name, F body) {
    try {
        body();
        ++passed;
        std::cout << "ok - " << name << std::endl;
    } catch (const std::exception& e) {
        ++failed;
        std::cout << "FAIL - " << name << ": " << e.what() << std::endl;
    }
}

static void check(bool condition, const std::string& message) {
    if (!condition) throw std::runtime_error(message);
}

template <class T>
std::string show(const std::vector<T>& v) {
    std::ostringstream out;
    for (std::size_t i = 0; i < v.size(); ++i) out << (i ? "," : "") << v[i];
    return "[" + out.str() + "]";
}

template <class A, class B>
void expect_eq(const A& expected, const B& actual, const std::string& what) {
    if (!(expected == actual)) {
        std::ostringstream out;
        out << what << ": expected " << expected << ", got " << actual;
        throw std::runtime_error(out.str());
    }
}

static void equal_list(const std::vector<std::string>& expected, const std::vector<std::string>& actual, const std::string& what) {
    if (expected != actual) throw std::runtime_error(what + ": expected " + show(expected) + ", got " + show(actual));
}

// ----- conformance ---------------------------------------------------------------------------

// The ingest time the labels assume (contract_corpus::REFERENCE_TIME_MICROS).
static const std::int64_t REFERENCE = 1708603200000000LL;

template <class V>
std::vector<std::string> distinct_codes(const std::vector<V>& violations) {
    std::set<std::string> codes;
    for (const auto& v : violations) codes.insert(v.code);
    return {codes.begin(), codes.end()};
}

template <class NS_DECODE, class NS_VALIDATE, class NS_JSON>
void conformance_of(const std::string& name, const std::string& corpus, NS_DECODE decode, NS_VALIDATE validate, NS_JSON to_json) {
    std::ifstream in(corpus + "/" + name + ".ndjson");
    check(static_cast<bool>(in), "no corpus for " + name);
    std::string line;
    std::size_t expressible = 0, total = 0;
    const std::set<std::string> shape = {"missing", "wrong_type", "unknown_field", "duplicate_field", "invalid_json"};
    while (std::getline(in, line)) {
        if (line.empty()) continue;
        ++total;
        const grt::Json c = grt::parse_json(line);
        const std::string case_name = grt::read::string(*c.get("name"));
        const std::string body = grt::read::string(*c.get("body"));
        std::set<std::string> label_set;
        for (const auto& code : c.get("codes")->items) label_set.insert(code.text);
        const std::vector<std::string> labels(label_set.begin(), label_set.end());
        std::vector<std::string> codes;
        std::string error;
        try {
            codes = distinct_codes(validate(decode(body), REFERENCE));
        } catch (const std::exception& e) {
            error = e.what();
        }
        if (!error.empty()) {
            test(name + ": " + case_name + ": not expressible only for shape errors", [&] {
                check(!labels.empty(), "a valid event cannot be written with the types (" + error + ")");
                std::set<std::string> allowed = shape;
                // Also impossible to write: an unknown variant (literal discriminator), an
                // unparseable timestamp (rt::Timestamp), an integer outside int32/int64.
                if (error.rfind("unknown ", 0) == 0) allowed.insert("one_of");
                if (error.find("timestamp") != std::string::npos) allowed.insert("invalid_format");
                if (error.find("does not fit") != std::string::npos || error.rfind("not a long", 0) == 0) allowed.insert("out_of_range");
                for (const auto& l : labels) check(allowed.count(l) == 1, "label " + l + " is not a shape error (" + error + ")");
            });
            continue;
        }
        ++expressible;
        test(name + ": " + case_name, [&] {
            equal_list(labels, codes, "codes");
            equal_list(labels, distinct_codes(validate(decode(to_json(decode(body))), REFERENCE)), "codes after to_json/decode");
        });
    }
    std::cout << "# " << name << ": " << expressible << " of " << total << " cases expressible" << std::endl;
}

#define CONFORMANCE(NS, NAME)                                                                                   \
    conformance_of(                                                                                             \
        NAME, corpus, [](const std::string& b) { return NS::decode(b); },                                      \
        [](const NS::Event& e, std::int64_t t) { return NS::validate(e, t); },                                  \
        [](const NS::Event& e) { return NS::to_json(e); })

static void conformance(const std::string& corpus) {
    CONFORMANCE(contractc_all_types, "all_types");
    CONFORMANCE(contractc_game_events, "game_events");
    CONFORMANCE(contractc_match_events, "match_events");
    CONFORMANCE(contractc_minimal, "minimal");
    CONFORMANCE(contractc_player_profiles, "player_profiles");
}

// ----- unit: a scripted transport ------------------------------------------------------------

struct Call {
    std::string method, url, content_type, body;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string header(const std::string& name) const {
        for (const auto& h : headers)
            if (h.first == name) return h.second;
        return "";
    }
};

class FakeTransport : public grt::Transport {
public:
    std::vector<Call> calls;
    std::function<grt::HttpAnswer(const Call&)> script;

    grt::HttpAnswer send(const std::string& method, const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers, const std::string& content_type,
                         const std::string& body) override {
        calls.push_back(Call{method, url, content_type, body, headers});
        if (url.find("/login-as-guest") != std::string::npos) {
            return {200, R"({"user_id":"11111111-1111-4111-8111-111111111111","guest_secret":"secret","auth_token":"token-1","refresh_token":"refresh-1","auth_token_expires_in":900,"refresh_token_expires_in":518400})"};
        }
        return script(calls.back());
    }

    std::size_t posts(const std::string& suffix) const {
        return static_cast<std::size_t>(std::count_if(calls.begin(), calls.end(), [&](const Call& c) {
            return c.url.size() >= suffix.size() && c.url.compare(c.url.size() - suffix.size(), suffix.size(), suffix) == 0;
        }));
    }
};

static std::string fresh_dir(const std::string& name) {
    static int n = 0;
    const std::string dir = std::string(std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp") + "/contractc-cpp-unit-" +
                            std::to_string(::getpid()) + "-" + name + "-" + std::to_string(++n);
    check(std::system(("mkdir -p '" + dir + "'").c_str()) == 0, "mkdir " + dir);
    return dir;
}

static grt::Options options(const std::string& dir, std::vector<int>* sleeps, std::function<std::int64_t()> now = {}) {
    grt::Options o;
    o.base_url = "http://game.test/prod/";
    o.state_dir = dir;
    o.random = [] { return 0.5; };
    o.sleep = [sleeps](int ms) {
        if (sleeps) sleeps->push_back(ms);
    };
    if (now) o.now_ms = now;
    return o;
}

static game::Event login_event(const std::string& id) {
    return game::LoginEvent(id, grt::Timestamp{grt::now_utc().micros - 3600LL * 1000000});
}

static std::vector<game::Event> login_events(const std::vector<std::string>& ids) {
    std::vector<game::Event> events;
    for (const auto& id : ids) events.push_back(login_event(id));
    return events;
}

/// The event ids of a batch request; fails unless its body is a JSON array.
static std::vector<std::string> ids(const Call& c) {
    const grt::Json parsed = grt::parse_json(c.body);
    check(parsed.kind == grt::Json::Kind::Array, "batch body is not a JSON array: " + c.body);
    std::vector<std::string> out;
    for (const auto& e : parsed.items) out.push_back(e.get("event_id")->text);
    return out;
}

/// Every batch request as `[e1,e2]`, space-separated.
static std::string requests(const FakeTransport& t) {
    std::string out;
    for (const auto& c : t.calls) {
        if (c.url.find("/prod/put-records") == std::string::npos) continue;
        std::string one;
        for (const auto& id : ids(c)) one += (one.empty() ? "" : ",") + id;
        out += (out.empty() ? "[" : " [") + one + "]";
    }
    return out;
}

static bool contains(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

/// `serve`'s batch answer: every event accepted, but the ids in `rejected`.
static grt::HttpAnswer serve_answer(const Call& c, const std::vector<std::string>& rejected = {}) {
    std::string results;
    const auto events = ids(c);
    for (std::size_t i = 0; i < events.size(); ++i) {
        results += (i > 0 ? "," : "") + std::string("{\"index\":") + std::to_string(i) + ",\"verdict\":\"" +
                   (contains(rejected, events[i]) ? "reject" : "accept") + "\",\"violations\":[]}";
    }
    return {200, "{\"request_id\":\"r\",\"results\":[" + results + "]}"};
}

/// The deployed API's batch answer: every event added, but the ids in `failing` (then a 500).
static grt::HttpAnswer aws_answer(const Call& c, const std::vector<std::string>& failing = {}) {
    std::string results;
    std::size_t failed = 0;
    const auto events = ids(c);
    for (std::size_t i = 0; i < events.size(); ++i) {
        results += (i > 0 ? "," : "") + std::string("{\"index\":") + std::to_string(i);
        if (contains(failing, events[i])) {
            ++failed;
            results += R"(,"result":"failed","error":"ProvisionedThroughputExceededException","message":"Rate exceeded"})";
        } else {
            results += R"(,"result":"added"})";
        }
    }
    return {failed > 0 ? 500 : 200, "{\"request_id\":\"r\",\"added\":" + std::to_string(events.size() - failed) +
                                         ",\"failed\":" + std::to_string(failed) + ",\"results\":[" + results + "]}"};
}

static game::Client client_with_limit(const grt::Options& o, grt::Transport& t, std::size_t max_batch_events,
                                      std::size_t max_body_bytes = 0) {
    auto info = game::contract();
    info.max_batch_events = max_batch_events;
    if (max_body_bytes > 0) info.max_body_bytes = max_body_bytes;
    return game::Client(info, o, t);
}

static std::string outcomes(const std::vector<grt::BatchEventResult>& results) {
    static const char* names[] = {"accepted", "quarantined", "rejected", "added", "failed"};
    std::string out;
    for (const auto& r : results) out += (out.empty() ? "" : " ") + std::string(names[static_cast<int>(r.outcome)]);
    return out;
}

// ----- the game's own sign-in: a token provider in place of the guest login ------------------

/// A provider handing out game-1, game-2, … (expiring `lifetime_ms` after `now()`, if set),
/// recording each force_refresh; `failure` makes it throw.
struct CountingProvider {
    std::vector<bool> asked;
    std::function<std::int64_t()> now = [] { return grt::now_utc().micros / 1000; };
    std::optional<std::int64_t> lifetime_ms = 900000;
    std::string failure;

    grt::TokenProvider provider() {
        return [this](bool force_refresh) {
            asked.push_back(force_refresh);
            if (!failure.empty()) throw grt::NetworkError(failure);
            grt::ProvidedToken token{"game-" + std::to_string(asked.size()), std::nullopt};
            if (lifetime_ms) token.expires_at_ms = now() + *lifetime_ms;
            return token;
        };
    }

    std::string forced() const {
        std::string out;
        for (bool b : asked) out += (out.empty() ? "" : ",") + std::string(b ? "force" : "cached");
        return out;
    }
};

static std::string tokens_sent(const FakeTransport& t) {
    std::string out;
    for (const auto& c : t.calls) out += (out.empty() ? "" : " ") + c.header("Authorization");
    return out;
}

static void token_provider_unit() {
    const grt::HttpAnswer ok{200, "\"ok\""};
    const grt::HttpAnswer unauthorized{401, R"({"message":"Unauthorized"})"};
    test("a token provider replaces the guest login: its token is sent, no guest login", [&] {
        FakeTransport t;
        t.script = [&](const Call& c) { return c.url.find("/put-records") != std::string::npos ? serve_answer(c) : ok; };
        CountingProvider p;
        auto o = options(fresh_dir("provider"), nullptr);
        o.token_provider = p.provider();
        auto client = game::make_client(o, t);
        client.send(login_event("e1"));
        client.send_batch({login_event("e2"), login_event("e3")});
        std::vector<std::string> got;
        for (const auto& c : t.calls) got.push_back(c.url + " " + c.header("Authorization"));
        equal_list({"http://game.test/prod/put-record game-1", "http://game.test/prod/put-records game-1"}, got, "requests and their token");
        expect_eq(std::string("cached"), p.forced(), "asked");
        check(!client.user_id(), "no guest identity");
    });
    test("the provider is asked again within the refresh margin of its token's expiry, not forced", [&] {
        FakeTransport t;
        t.script = [&](const Call&) { return ok; };
        std::int64_t clock = grt::now_utc().micros / 1000;
        CountingProvider p;
        p.now = [&] { return clock; };
        auto o = options(fresh_dir("provider-margin"), nullptr, [&] { return clock; });
        o.token_provider = p.provider();
        auto client = game::make_client(o, t);
        client.send(login_event("e1"));
        clock += 800000;
        client.send(login_event("e2"));
        clock += 45000;
        client.send(login_event("e3"));
        expect_eq(std::string("game-1 game-1 game-2"), tokens_sent(t), "tokens sent");
        expect_eq(std::string("cached,cached"), p.forced(), "force_refresh");
    });
    test("a token without expires_at_ms is kept until a 401", [&] {
        FakeTransport t;
        t.script = [&](const Call&) { return ok; };
        CountingProvider p;
        p.lifetime_ms.reset();
        auto o = options(fresh_dir("provider-no-expiry"), nullptr);
        o.token_provider = p.provider();
        auto client = game::make_client(o, t);
        for (const char* id : {"e1", "e2", "e3"}) client.send(login_event(id));
        expect_eq(std::string("game-1 game-1 game-1"), tokens_sent(t), "tokens sent");
        expect_eq(std::string("cached"), p.forced(), "asked once");
    });
    test("a 401 asks the provider again with force_refresh and retries once (batch and single)", [&] {
        // The server stops taking a token once it was sent (revoked, or expired early).
        std::set<std::string> refused;
        FakeTransport t;
        t.script = [&](const Call& c) {
            if (refused.count(c.header("Authorization"))) return unauthorized;
            return c.url.find("/put-records") != std::string::npos ? serve_answer(c) : ok;
        };
        CountingProvider p;
        auto o = options(fresh_dir("provider-401"), nullptr);
        o.token_provider = p.provider();
        auto client = game::make_client(o, t);
        expect_eq(200, client.send(login_event("e1")).status, "single");
        refused.insert("game-1");
        client.enqueue(login_event("e2"));
        client.enqueue(login_event("e3"));
        const auto result = client.flush();
        expect_eq(std::string("2 0"), std::to_string(result.accepted) + " " + std::to_string(result.remaining), "accepted remaining");
        refused.insert("game-2");
        expect_eq(200, client.send(login_event("e4")).status, "single after a 401");
        expect_eq(std::string("game-1 game-1 game-2 game-2 game-3"), tokens_sent(t), "tokens sent");
        expect_eq(std::string("cached,force,force"), p.forced(), "force_refresh");
        expect_eq(std::string("[e2,e3] [e2,e3]"), requests(t), "batch requests");
    });
    test("a second 401 is an HttpError; the queued events stay for the next flush", [&] {
        bool refuse_all = true;
        FakeTransport t;
        t.script = [&](const Call& c) { return refuse_all ? unauthorized : serve_answer(c); };
        CountingProvider p;
        auto o = options(fresh_dir("provider-401-twice"), nullptr);
        o.token_provider = p.provider();
        auto client = game::make_client(o, t);
        client.enqueue(login_event("e1"));
        client.enqueue(login_event("e2"));
        int status = 0;
        try {
            client.flush();
        } catch (const grt::HttpError& e) {
            status = e.status;
        }
        expect_eq(401, status, "the flush's failure");
        expect_eq(2u, t.posts("/prod/put-records"), "the request and its one retry");
        expect_eq(2u, client.queued(), "still queued");
        refuse_all = false;
        const auto result = client.flush();
        expect_eq(std::string("2 0"), std::to_string(result.accepted) + " " + std::to_string(result.remaining), "next flush");
        expect_eq(std::string("cached,force"), p.forced(), "force_refresh");
    });
    test("a provider that throws NetworkError is retried as a network error; the events stay queued", [&] {
        FakeTransport t;
        t.script = [&](const Call& c) { return serve_answer(c); };
        CountingProvider p;
        p.failure = "the game's backend is down";
        auto o = options(fresh_dir("provider-fails"), nullptr);
        o.max_attempts = 2;
        o.token_provider = p.provider();
        auto client = game::make_client(o, t);
        client.enqueue(login_event("e1"));
        std::string why;
        try {
            client.flush();
        } catch (const grt::NetworkError& e) {
            why = e.what();
        }
        expect_eq(p.failure, why, "the provider's error");
        expect_eq(std::string("2 0 1"), std::to_string(p.asked.size()) + " " + std::to_string(t.calls.size()) + " " +
                                            std::to_string(client.queued()),
                  "asked, requests, queued");
        p.failure.clear();
        expect_eq(1u, client.flush().accepted, "next flush");
    });
}

static void unit() {
    test("retries network errors and 5xx with growing jittered backoff, then succeeds", [] {
        FakeTransport t;
        int n = 0;
        t.script = [&](const Call&) -> grt::HttpAnswer {
            ++n;
            if (n == 1) throw grt::NetworkError("connection refused");
            if (n == 2) return {503, "busy"};
            return {200, "\"Successfully added event\""};
        };
        std::vector<int> sleeps;
        auto client = game::make_client(options(fresh_dir("retry"), &sleeps), t);
        expect_eq(200, client.send(login_event("e1")).status, "status");
        expect_eq(3u, t.posts("/prod/put-record"), "put-record calls");
        expect_eq(std::string("[100,200]"), show(sleeps), "backoff");
    });
    test("never retries a 4xx", [] {
        FakeTransport t;
        t.script = [](const Call&) { return grt::HttpAnswer{400, "{\"message\":\"bad\"}"}; };
        auto client = game::make_client(options(fresh_dir("4xx"), nullptr), t);
        int status = 0;
        try {
            client.send(login_event("e1"));
        } catch (const grt::HttpError& e) {
            status = e.status;
        }
        expect_eq(400, status, "HttpError status");
        expect_eq(1u, t.posts("/prod/put-record"), "put-record calls");
    });
    test("gives up after max_attempts on a persistent 5xx", [] {
        FakeTransport t;
        t.script = [](const Call&) { return grt::HttpAnswer{502, "bad gateway"}; };
        auto o = options(fresh_dir("5xx"), nullptr);
        o.max_attempts = 3;
        auto client = game::make_client(o, t);
        int status = 0;
        try {
            client.send(login_event("e1"));
        } catch (const grt::HttpError& e) {
            status = e.status;
        }
        expect_eq(502, status, "HttpError status");
        expect_eq(3u, t.posts("/prod/put-record"), "attempts");
    });
    test("an invalid event is refused locally and never sent", [] {
        FakeTransport t;
        t.script = [](const Call&) { return grt::HttpAnswer{200, "\"ok\""}; };
        auto client = game::make_client(options(fresh_dir("invalid"), nullptr), t);
        std::vector<std::string> got;
        try {
            client.send(game::LoginEvent("a b", grt::Timestamp{grt::now_utc().micros}));
        } catch (const grt::ContractViolation& e) {
            for (const auto& v : e.violations) got.push_back(v.code + " " + v.path + " " + grt::policy_name(v.policy));
        }
        equal_list({"pattern $.event_id reject"}, got, "violations");
        expect_eq(0u, t.calls.size(), "requests");
    });
    test("refreshes the token before it expires; logs in again when the refresh is refused", [] {
        FakeTransport t;
        std::int64_t clock = grt::now_utc().micros / 1000;
        bool refresh_ok = true;
        t.script = [&](const Call& c) -> grt::HttpAnswer {
            if (c.url.find("/refresh-access-token") != std::string::npos) {
                return refresh_ok ? grt::HttpAnswer{200, R"({"auth_token":"token-2","auth_token_expires_in":900})"}
                                  : grt::HttpAnswer{401, R"({"message":"Unauthorized"})"};
            }
            return {200, "\"ok\""};
        };
        auto client = game::make_client(options(fresh_dir("refresh"), nullptr, [&] { return clock; }), t);
        client.send(login_event("e1"));
        expect_eq(std::string("token-1"), t.calls.at(1).header("Authorization"), "first token");
        clock += 845000;
        client.send(login_event("e2"));
        expect_eq(std::string("http://game.test/prod/refresh-access-token?refresh_token=refresh-1"), t.calls.at(2).url, "refresh");
        expect_eq(std::string("token-2"), t.calls.at(3).header("Authorization"), "refreshed token");
        clock += 900000;
        refresh_ok = false;
        client.send(login_event("e3"));
        std::vector<std::string> urls;
        for (std::size_t i = 4; i < t.calls.size(); ++i) urls.push_back(t.calls[i].url);
        equal_list({"http://game.test/prod/refresh-access-token?refresh_token=refresh-1",
                    "http://game.test/prod/login-as-guest?user_id=11111111-1111-4111-8111-111111111111&guest_secret=secret",
                    "http://game.test/prod/put-record"},
                   urls, "refused refresh, then the returning guest's login");
    });
    test("every request carries X-Contract-Version", [] {
        FakeTransport t;
        t.script = [](const Call& c) {
            return c.url.find("/put-records") != std::string::npos ? serve_answer(c) : grt::HttpAnswer{200, "\"ok\""};
        };
        auto client = game::make_client(options(fresh_dir("version"), nullptr), t);
        client.send(login_event("e1"));
        client.send_batch({login_event("e2"), login_event("e3")});
        expect_eq(3u, t.calls.size(), "calls");
        for (const auto& c : t.calls) expect_eq(std::string("1.2.0"), c.header("X-Contract-Version"), "header on " + c.url);
    });
    test("each event gets a UUIDv7 when it is made, and every retry of it carries the same", [] {
        FakeTransport t;
        int n = 0;
        t.script = [&](const Call&) -> grt::HttpAnswer {
            return ++n < 3 ? grt::HttpAnswer{503, "busy"} : grt::HttpAnswer{200, "\"Successfully added event\""};
        };
        game::LoginEvent e("e1", grt::Timestamp{grt::now_utc().micros - 3600LL * 1000000});
        const std::string id = e.event_uuid.value_or("");
        static const std::regex v7("^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
        check(std::regex_match(id, v7), "a UUIDv7: " + id);
        game::LoginEvent other("e2", grt::Timestamp{grt::now_utc().micros});
        check(other.event_uuid != e.event_uuid, "two events, two ids");
        std::vector<int> sleeps;
        auto client = game::make_client(options(fresh_dir("event-id"), &sleeps), t);
        client.send(e);
        expect_eq(3u, t.posts("/prod/put-record"), "attempts");
        for (const auto& c : t.calls)
            if (c.url.find("/prod/put-record") != std::string::npos)
                check(c.body.find("\"event_uuid\":\"" + id + "\"") != std::string::npos, "the id in " + c.body);
    });
    test("the queue is bounded: the oldest events are dropped first and counted, across restarts", [] {
        FakeTransport t;
        t.script = [](const Call& c) { return serve_answer(c); };
        const std::string dir = fresh_dir("bound");
        auto o = options(dir, nullptr);
        o.max_queued_events = 2;
        {
            auto client = game::make_client(o, t);
            client.enqueue(login_event("e1"));
            client.enqueue(login_event("e2"));
            client.enqueue(login_event("e3"));
        }
        auto client = game::make_client(o, t);
        expect_eq(2u, client.queued(), "queued");
        expect_eq(1u, client.dropped(), "dropped");
        auto result = client.flush();
        expect_eq(2u, result.accepted, "accepted");
        expect_eq(0u, result.remaining, "remaining");
        const Call& batch = t.calls.back();
        equal_list({"e2", "e3"}, ids(batch), "batch");
        expect_eq(std::string("application/json"), batch.content_type, "content type");
    });
    test("a failed flush keeps the events for the next one", [] {
        FakeTransport t;
        bool up = false;
        t.script = [&](const Call& c) -> grt::HttpAnswer {
            if (!up) throw grt::NetworkError("offline");
            return serve_answer(c);
        };
        auto o = options(fresh_dir("offline"), nullptr);
        o.max_attempts = 2;
        auto client = game::make_client(o, t);
        client.enqueue(login_event("e1"));
        bool threw = false;
        try {
            client.flush();
        } catch (const grt::NetworkError&) {
            threw = true;
        }
        check(threw, "the offline flush fails");
        expect_eq(1u, client.queued(), "still queued");
        up = true;
        expect_eq(1u, client.flush().accepted, "second flush");
        expect_eq(0u, client.queued(), "empty");
    });
    test("a batch goes out as JSON arrays of at most max_batch_events; verdicts map back to their events", [] {
        FakeTransport t;
        t.script = [](const Call& c) { return serve_answer(c, {"e3"}); };
        auto client = client_with_limit(options(fresh_dir("split"), nullptr), t, 2);
        const auto result = client.send_batch(login_events({"e1", "e2", "e3", "e4", "e5"}));
        expect_eq(std::string("[e1,e2] [e3,e4] [e5]"), requests(t), "requests");
        for (const auto& c : t.calls) {
            if (c.url.find("/put-records") != std::string::npos) expect_eq(std::string("application/json"), c.content_type, "content type");
        }
        expect_eq(std::string("accepted accepted rejected accepted accepted"), outcomes(result.results), "per event");
        expect_eq(std::string("5 4 1 0"), std::to_string(result.sent) + " " + std::to_string(result.accepted) + " " +
                                             std::to_string(result.rejected) + " " + std::to_string(result.failed), "counts");
    });
    test("never more than 500 events per request, whatever the contract allows", [] {
        FakeTransport t;
        t.script = [](const Call& c) { return serve_answer(c); };
        auto o = options(fresh_dir("cap"), nullptr);
        o.max_queued_events = 2000;
        auto client = client_with_limit(o, t, 1000);
        for (int i = 0; i < 501; ++i) client.enqueue(login_event("q" + std::to_string(i)));
        const auto result = client.flush();
        std::vector<std::string> sizes;
        for (const auto& c : t.calls) {
            if (c.url.find("/put-records") != std::string::npos) sizes.push_back(std::to_string(ids(c).size()));
        }
        equal_list({"500", "1"}, sizes, "request sizes");
        expect_eq(501u, result.accepted, "accepted");
        expect_eq(0u, result.remaining, "remaining");
    });
    test("a batch request stays within max_body_bytes x max_batch_events bytes (and 3 MB)", [] {
        FakeTransport t;
        t.script = [](const Call& c) { return serve_answer(c); };
        auto client = client_with_limit(options(fresh_dir("bytes"), nullptr), t, 10, 40);
        std::vector<std::string> all;
        for (int i = 0; i < 10; ++i) all.push_back("e" + std::to_string(i));
        const auto result = client.send_batch(login_events(all));
        std::vector<std::string> sent;
        std::size_t requests = 0;
        for (const auto& c : t.calls) {
            if (c.url.find("/put-records") == std::string::npos) continue;
            ++requests;
            check(c.body.size() <= 400, "a request of " + std::to_string(c.body.size()) + " bytes");
            for (const auto& id : ids(c)) sent.push_back(id);
        }
        check(requests > 1, "one request");
        equal_list(all, sent, "every event once, in order");
        expect_eq(10u, result.accepted, "accepted");
        const std::vector<std::string> big(40, std::string(100000, 'x'));
        auto self = [](const std::string& b) -> const std::string& { return b; };
        expect_eq(1u, grt::batch_length(big.begin(), big.begin() + 1, self, 500, 100), "an event over the limit goes alone");
        expect_eq(29u, grt::batch_length(big.begin(), big.end(), self, 500, grt::max_batch_request_bytes), "3 MB");
    });
    test("the deployed API's answer: a failed record is sent again alone, an added one never", [] {
        FakeTransport t;
        std::vector<std::string> failing = {"e2"};
        t.script = [&](const Call& c) {
            auto answer = aws_answer(c, failing);
            failing.clear();
            return answer;
        };
        std::vector<int> sleeps;
        auto client = game::make_client(options(fresh_dir("aws"), &sleeps), t);
        const auto result = client.send_batch(login_events({"e1", "e2", "e3"}));
        expect_eq(std::string("[e1,e2,e3] [e2]"), requests(t), "requests");
        expect_eq(std::string("[100]"), show(sleeps), "backoff before the retry");
        expect_eq(std::string("added added added"), outcomes(result.results), "per event");
        expect_eq(std::string("3 3 0"), std::to_string(result.sent) + " " + std::to_string(result.added) + " " + std::to_string(result.failed), "counts");
    });
    test("a record that keeps failing: send_batch throws BatchError saying which events were added", [] {
        FakeTransport t;
        t.script = [](const Call& c) { return aws_answer(c, {"e2"}); };
        auto o = options(fresh_dir("aws-fail"), nullptr);
        o.max_attempts = 3;
        auto client = game::make_client(o, t);
        bool threw = false;
        try {
            client.send_batch(login_events({"e1", "e2", "e3"}));
        } catch (const grt::BatchError& e) {
            threw = true;
            expect_eq(std::string("added failed added"), outcomes(e.result.results), "per event");
            check(e.result.results[1].error.rfind("ProvisionedThroughputExceededException", 0) == 0, "error " + e.result.results[1].error);
            expect_eq(500, e.status, "status");
        }
        check(threw, "BatchError thrown");
        expect_eq(std::string("[e1,e2,e3] [e2] [e2]"), requests(t), "requests");
    });
    test("flush against the deployed API: added events leave the journal, a failing one stays, across restarts", [] {
        FakeTransport t;
        std::vector<std::string> failing = {"e2"};
        t.script = [&](const Call& c) { return aws_answer(c, failing); };
        auto o = options(fresh_dir("aws-flush"), nullptr);
        o.max_attempts = 2;
        {
            auto client = game::make_client(o, t);
            for (const auto& id : {"e1", "e2", "e3"}) client.enqueue(login_event(id));
            int status = 0;
            try {
                client.flush();
            } catch (const grt::HttpError& e) {
                status = e.status;
            }
            expect_eq(500, status, "HttpError status");
            expect_eq(1u, client.queued(), "still queued");
        }
        failing.clear();
        auto client = game::make_client(o, t);
        expect_eq(1u, client.queued(), "queued after a restart");
        const auto result = client.flush();
        expect_eq(std::string("1 1 0"), std::to_string(result.sent) + " " + std::to_string(result.added) + " " + std::to_string(result.remaining), "sent added remaining");
        expect_eq(std::string("[e1,e2,e3] [e2] [e2]"), requests(t), "requests: nothing added is sent again");
    });
    test("a 5xx without results (\"Failed to add events\") sends the whole batch again", [] {
        FakeTransport t;
        int n = 0;
        t.script = [&](const Call& c) { return ++n == 1 ? grt::HttpAnswer{500, "\"Failed to add events\""} : aws_answer(c); };
        auto client = game::make_client(options(fresh_dir("aws-5xx"), nullptr), t);
        const auto result = client.send_batch(login_events({"e1", "e2"}));
        expect_eq(std::string("[e1,e2] [e1,e2]"), requests(t), "requests");
        expect_eq(2u, result.added, "added");
    });
    test("JSON writing escapes quotes, backslashes and control characters and keeps UTF-8", [] {
        game::LoginEvent e("e1", grt::make_timestamp(2024, 2, 22, 3, 3, 2));
        e.event_data = std::string("quote \" backslash \\ tab \t newline \n bell \x07 \xC3\xA9 \xF0\x9F\x90\xA2");
        e.event_uuid = "0190a6c4-1c2b-7d3e-8f40-123456789abc";
        const std::string json = game::to_json(game::Event(e));
        expect_eq(std::string(R"({"event_id":"e1","event_type":"Login","updated_at":"2024-02-22 03:03:02","event_data":"quote \" backslash \\ tab \t newline \n bell \u0007 é 🐢","event_uuid":"0190a6c4-1c2b-7d3e-8f40-123456789abc"})"),
              json, "json");
        const auto back = std::get<game::LoginEvent>(game::decode(json));
        expect_eq(*e.event_data, *back.event_data, "round trip");
    });
    token_provider_unit();
}

// ----- end to end ------------------------------------------------------------------------------

/// The libcurl transport, recording what was sent.
class Recording : public grt::Transport {
public:
    std::vector<Call> calls;
    grt::CurlTransport inner{10000};

    grt::HttpAnswer send(const std::string& method, const std::string& url,
                         const std::vector<std::pair<std::string, std::string>>& headers, const std::string& content_type,
                         const std::string& body) override {
        calls.push_back(Call{method, url, content_type, body, headers});
        return inner.send(method, url, headers, content_type, body);
    }
};

static void end_to_end(const std::string& base, const std::string& state) {
    Recording transport;
    auto opts = [&](const std::string& name) {
        grt::Options o;
        o.base_url = base;
        o.state_dir = state + "/" + name;
        check(std::system(("mkdir -p '" + o.state_dir + "'").c_str()) == 0, "mkdir");
        return o;
    };
    const grt::Timestamp wall = grt::local_wall_clock();
    int n = 0;
    auto next = [&] {
        game::LoginEvent e("cpp-" + std::to_string(++n), wall);
        e.event_data = "c++ \"client\" \xC3\xA9 \xF0\x9F\x90\xA2 " + std::to_string(n);
        return game::Event(e);
    };
    test("guest login keeps user_id and guest_secret; a returning guest gets the same user", [&] {
        auto first = game::make_client(opts("login"), transport);
        first.login();
        const auto user = first.user_id();
        check(user && user->size() == 36, "user_id");
        auto again = game::make_client(opts("login"), transport);
        again.login();
        expect_eq(*user, *again.user_id(), "returning guest");
    });
    auto client = game::make_client(opts("game"), transport);
    test("a single event lands: 200 \"Successfully added event\"", [&] {
        game::NewGameEvent e("cpp-single", wall);
        e.event_data = "first event";
        const auto answer = client.send(e);
        expect_eq(200, answer.status, "status");
        expect_eq(std::string("\"Successfully added event\""), answer.body, "body");
    });
    test("a batch lands: every event accepted", [&] {
        const auto answer = client.send_batch({next(), next(), next()});
        expect_eq(std::string("3 0 0 0"), std::to_string(answer.accepted) + " " + std::to_string(answer.quarantined) + " " +
                                               std::to_string(answer.rejected) + " " + std::to_string(answer.failed),
                  "accepted quarantined rejected failed");
        expect_eq(std::string("accepted accepted accepted"), outcomes(answer.results), "per event");
    });
    test("a batch goes out as a JSON array (application/json), as the deployed API takes it", [&] {
        std::size_t batches = 0;
        for (const auto& c : transport.calls) {
            if (c.url.find("/prod/put-records") == std::string::npos) continue;
            ++batches;
            expect_eq(std::string("application/json"), c.content_type, "content type");
            const auto n = ids(c).size();
            check(n >= 1 && n <= 500, "events in the array: " + std::to_string(n));
        }
        check(batches > 0, "no batch request recorded");
    });
    test("an invalid event is refused locally with the server's code and path, and never sent", [&] {
        std::vector<std::string> got;
        try {
            client.send(game::EndGameEvent("not valid!", wall));
        } catch (const grt::ContractViolation& e) {
            for (const auto& v : e.violations) got.push_back(v.code + " " + v.path);
        }
        equal_list({"pattern $.event_id"}, got, "violations");
    });
    test("match_events (scope authenticated): single and batch", [&] {
        match::rt::CurlTransport mt(10000);
        match::rt::Options o;
        o.base_url = base;
        o.state_dir = state + "/match";
        o.login_query = "scope=authenticated";
        check(std::system(("mkdir -p '" + o.state_dir + "'").c_str()) == 0, "mkdir");
        auto m = match::make_client(o, mt);
        auto started = [](const std::string& id) {
            match::Build build("1.2.3");
            build.platform = "pc";
            match::PlayersItem a("123e4567-e89b-12d3-a456-426614174000");
            a.skill = 1200.5;
            return match::Event(match::MatchStartedEvent(id, match::rt::now_utc(), "m-0123456789ab", "eu-west", build, "harbour",
                                                         {a, match::PlayersItem("123e4567-e89b-12d3-a456-426614174001")}));
        };
        expect_eq(200, m.send(started("6f1c2d3e-0000-4000-8000-0000000000c1")).status, "single");
        match::MatchEndedEvent ended("6f1c2d3e-0000-4000-8000-0000000000c3", match::rt::now_utc(), "m-0123456789ab", "us-east",
                                     match::Build("1.2.3"), 1800, {{"alice", 10}, {"bob", 12}});
        ended.prize_pool = "1500.25";
        const auto answer = m.send_batch({started("6f1c2d3e-0000-4000-8000-0000000000c2"), match::Event(ended)});
        expect_eq(2u, answer.accepted, "accepted");
    });
}

// ----- the persistent queue across kill -9 -----------------------------------------------------

class Offline : public grt::Transport {
public:
    grt::HttpAnswer send(const std::string&, const std::string&, const std::vector<std::pair<std::string, std::string>>&,
                         const std::string&, const std::string&) override {
        throw grt::NetworkError("offline");
    }
};

static void queue_fill(const std::string& state, int count) {
    Offline offline;
    grt::Options o;
    o.base_url = "http://127.0.0.1:9/prod/";
    o.state_dir = state;
    o.max_queued_events = 100000;
    auto client = game::make_client(o, offline);
    const grt::Timestamp wall = grt::local_wall_clock();
    for (int i = 0; i < count; ++i) {
        const std::string id = "kill-" + std::to_string(i);
        client.enqueue(game::LoginEvent(id, wall));
        std::cout << id << std::endl;  // only once the journal has it
    }
}

static void queue_resume(const std::string& base, const std::string& state, const std::string& printed_file) {
    std::ifstream in(printed_file);
    std::vector<std::string> printed;
    for (std::string line; std::getline(in, line);)
        if (!line.empty()) printed.push_back(line);
    grt::CurlTransport transport(10000);
    grt::Options o;
    o.base_url = base;
    o.state_dir = state;
    o.max_queued_events = 100000;
    test("kill -9 while enqueueing: every acknowledged event is still queued, none twice", [&] {
        auto client = game::make_client(o, transport);
        check(printed.size() > 0, "the child printed nothing before the kill");
        const std::size_t queued = client.queued();
        check(queued >= printed.size() && queued <= printed.size() + 1,
              "queued " + std::to_string(queued) + " for " + std::to_string(printed.size()) + " acknowledged");
        const auto result = client.flush();
        expect_eq(queued, result.sent, "sent");
        expect_eq(queued, result.accepted, "accepted by serve");
        expect_eq(0u, client.queued(), "queue empty after the flush");
    });
    test("after the restart and flush, nothing is sent again", [&] {
        auto client = game::make_client(o, transport);
        expect_eq(0u, client.queued(), "queued after a second restart");
        expect_eq(0u, client.flush().sent, "sent by a second flush");
    });
}

// ----- a producer for tests/exactly_once.py --------------------------------------------------

/// Makes COUNT events (each gets its UUIDv7 when it is made), queues them persistently and flushes
/// until the queue is empty, through a proxy that loses answers, resets uploads and answers late;
/// killed with -9 and started again, it goes on from its queue and its log of what it made
/// (STATE_DIR/produced.ndjson).
static int faults(const std::string& base, const std::string& state, int count) {
    check(std::system(("mkdir -p '" + state + "'").c_str()) == 0, "mkdir");
    const std::string log = state + "/produced.ndjson";
    int made = 0;
    {
        std::ifstream in(log);
        for (std::string line; std::getline(in, line);)
            if (!line.empty()) ++made;
    }
    // Shorter than the proxy's delay: a slow answer is abandoned and the events sent again.
    grt::CurlTransport transport(1500);
    grt::Options o;
    o.base_url = base;
    o.state_dir = state + "/client";
    o.max_attempts = 3;
    check(std::system(("mkdir -p '" + o.state_dir + "'").c_str()) == 0, "mkdir");
    auto client = game::make_client(o, transport);
    auto flush = [&] {
        try {
            client.flush();
        } catch (const std::exception&) {
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    };
    for (int n = made; n < count; ++n) {
        game::LoginEvent e("cpp-" + std::to_string(n), grt::local_wall_clock());
        e.event_data = std::string("fault test");
        // Queued (journaled) first, then logged: a kill between the two leaves an event made but
        // not logged, never one logged but lost.
        client.enqueue(e);
        std::ofstream(log, std::ios::app) << "{\"event_uuid\":\"" << e.event_uuid.value_or("") << "\"}\n";
        if (n % 7 == 6) flush();
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (client.queued() > 0 && std::chrono::steady_clock::now() < deadline) flush();
    std::cout << "cpp producer: " << count << " made, " << client.queued() << " still queued" << std::endl;
    return client.queued() == 0 ? 0 : 1;
}

// ----- the game's own sign-in (tests/clients/sign_in.py) ---------------------------------------

/// Against a real `serve --trust-issuer IDP`: a token provider backed by the test IdP
/// (tests/clients/test_idp.py) in place of the guest login; the IdP hands out expired tokens on the
/// way, and each costs one 401, one forced ask and one retry. The client's clock is ours, to reach
/// the refresh margin at once. Writes STATE_DIR/sent.ndjson: the event_uuid of every event sent.
static void sign_in(const std::string& base, const std::string& idp, const std::string& subject, const std::string& state) {
    check(std::system(("mkdir -p '" + state + "'").c_str()) == 0, "mkdir");
    grt::CurlTransport http(10000);
    std::int64_t clock = grt::now_utc().micros / 1000;
    std::vector<bool> asked;
    grt::Options o;
    o.base_url = base;
    o.state_dir = state;
    o.now_ms = [&] { return clock; };
    // The game's sign-in: its backend's token for the player (here the test IdP's).
    o.token_provider = [&](bool force_refresh) {
        asked.push_back(force_refresh);
        const grt::HttpAnswer answer = http.send("GET", idp + "/token?sub=" + grt::url_encode(subject), {}, "", "");
        if (answer.status != 200) throw grt::NetworkError("the IdP answered " + std::to_string(answer.status));
        const grt::Json body = grt::parse_json(answer.body);
        return grt::ProvidedToken{body.get("access_token")->text, clock + grt::read::long_(*body.get("expires_in")) * 1000};
    };
    auto expire_next = [&](int count) {
        const auto answer = http.send("POST", idp + "/expire-next?sub=" + grt::url_encode(subject) + "&count=" + std::to_string(count),
                                      {}, "application/json", "");
        expect_eq(204, answer.status, "expire-next");
    };
    auto forced = [&](std::size_t from) {
        std::string out;
        for (std::size_t i = from; i < asked.size(); ++i) out += (out.empty() ? "" : ",") + std::string(asked[i] ? "force" : "cached");
        return out;
    };
    auto client = game::make_client(o, http);
    int n = 0;
    auto next = [&] {
        game::LoginEvent e("cpp-sign-in-" + std::to_string(++n), grt::local_wall_clock());
        e.event_data = std::string("signed in by the game");
        std::ofstream(state + "/sent.ndjson", std::ios::app) << "{\"event_uuid\":\"" << e.event_uuid.value_or("") << "\"}\n";
        return game::Event(e);
    };
    test("an expired first token: serve answers 401, the provider is forced once and the event lands", [&] {
        expire_next(1);
        expect_eq(200, client.send(next()).status, "status");
        expect_eq(std::string("cached,force"), forced(0), "force_refresh");
        check(!client.user_id(), "no guest login");
    });
    test("a batch lands with the game's token, asking nothing more", [&] {
        const auto result = client.send_batch({next(), next(), next()});
        expect_eq(std::string("3 0"), std::to_string(result.accepted) + " " + std::to_string(result.failed), "accepted failed");
        expect_eq(2u, asked.size(), "provider calls");
    });
    test("within the refresh margin the provider is asked again; its expired token costs one forced retry", [&] {
        for (int i = 0; i < 5; ++i) client.enqueue(next());
        expire_next(1);
        clock += 120000;
        const auto result = client.flush();
        expect_eq(std::string("5 0"), std::to_string(result.accepted) + " " + std::to_string(result.remaining), "accepted remaining");
        expect_eq(std::string("cached,force"), forced(2), "force_refresh");
    });
    test("a second 401 fails the flush and keeps the events queued; the next flush sends them", [&] {
        for (int i = 0; i < 3; ++i) client.enqueue(next());
        expire_next(2);
        clock += 120000;
        int status = 0;
        try {
            client.flush();
        } catch (const grt::HttpError& e) {
            status = e.status;
        }
        expect_eq(401, status, "the flush's failure");
        expect_eq(3u, client.queued(), "still queued");
        const auto result = client.flush();
        expect_eq(std::string("3 0"), std::to_string(result.accepted) + " " + std::to_string(result.remaining), "accepted remaining");
        expect_eq(std::string("cached,force,cached"), forced(4), "force_refresh");
    });
}

int main(int argc, char** argv) {
    const std::string suite = argc > 1 ? argv[1] : "";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    if (suite == "conformance" && argc == 3) conformance(argv[2]);
    else if (suite == "unit") unit();
    else if (suite == "e2e" && argc == 4) end_to_end(argv[2], argv[3]);
    else if (suite == "queue-fill" && argc == 4) {
        queue_fill(argv[2], std::atoi(argv[3]));
        return 0;
    } else if (suite == "queue-resume" && argc == 5) queue_resume(argv[2], argv[3], argv[4]);
    else if (suite == "faults" && argc == 5) return faults(argv[2], argv[3], std::atoi(argv[4]));
    else if (suite == "sign-in" && argc == 6) sign_in(argv[2], argv[3], argv[4], argv[5]);
    else {
        std::cerr << "usage: tests conformance DIR | unit | e2e BASE STATE | queue-fill STATE N | queue-resume BASE STATE FILE"
                     " | faults BASE STATE COUNT | sign-in BASE IDP SUBJECT STATE\n";
        return 2;
    }
    std::cout << "cpp " << suite << ": " << passed << " passed, " << failed << " failed" << std::endl;
    return failed == 0 ? 0 : 1;
}
