// Tests of the generated C# (Unity) client, compiled with Mono outside the engine (HttpClient):
//   Tests.exe conformance CORPUS_DIR   every expressible corpus case gets the labelled codes
//   Tests.exe unit                     retry, refresh, queue bound, version header (fake transport)
//   Tests.exe e2e BASE_URL STATE_DIR   against a real `contract-runtime serve`
//   Tests.exe sign-in BASE_URL IDP_URL SUBJECT STATE_DIR   the game's own sign-in (tests/clients/sign_in.py)
// Each prints `ok - name` / `FAIL - name: reason` and ends with `<suite>: N passed, M failed`.

using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Game = Contractc.GameEvents;
using Match = Contractc.MatchEvents;

public static class Tests
{
    private static int passed;
    private static int failed;

    private static void Test(string name, Action body)
    {
        try
        {
            body();
            passed++;
            Console.WriteLine("ok - " + name);
        }
        catch (Exception error)
        {
            failed++;
            var inner = error is AggregateException && error.InnerException != null ? error.InnerException : error;
            Console.WriteLine("FAIL - " + name + ": " + inner.GetType().Name + ": " + inner.Message);
        }
    }

    private static void Assert(bool condition, string message)
    {
        if (!condition) throw new Exception(message);
    }

    private static void Equal<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual)) throw new Exception(what + ": expected " + expected + ", got " + actual);
    }

    private static void EqualSeq(IEnumerable<string> expected, IEnumerable<string> actual, string what)
    {
        var e = string.Join(",", expected.ToArray());
        var a = string.Join(",", actual.ToArray());
        if (e != a) throw new Exception(what + ": expected [" + e + "], got [" + a + "]");
    }

    public static int Main(string[] args)
    {
        var suite = args.Length > 0 ? args[0] : "";
        switch (suite)
        {
            case "conformance": Conformance(args[1]); break;
            case "unit": Unit(); break;
            case "e2e": EndToEnd(args[1], args[2]); break;
            case "faults": return Faults(args[1], args[2], int.Parse(args[3], CultureInfo.InvariantCulture));
            case "sign-in": SignIn(args[1], args[2], args[3], args[4]); break;
            default:
                Console.Error.WriteLine("usage: Tests.exe conformance DIR | unit | e2e BASE_URL STATE_DIR | faults BASE_URL STATE_DIR COUNT | sign-in BASE_URL IDP_URL SUBJECT STATE_DIR");
                return 2;
        }
        Console.WriteLine("csharp " + suite + ": " + passed + " passed, " + failed + " failed");
        return failed == 0 ? 0 : 1;
    }

    // ----- conformance ---------------------------------------------------------------------------

    // The ingest time the labels assume (contract_corpus::REFERENCE_TIME_MICROS).
    private static readonly DateTime Reference = new DateTime(1970, 1, 1, 0, 0, 0, DateTimeKind.Utc).AddTicks(1708603200000000L * 10);

    private sealed class Module
    {
        public Func<string, string[]> Codes;
        public Func<string, string> RoundTrip;
    }

    private static string[] Distinct(IEnumerable<string> codes)
    {
        return codes.Distinct().OrderBy(c => c, StringComparer.Ordinal).ToArray();
    }

    private static Module Of<E>(Func<string, E> decode, Func<E, DateTime, IEnumerable<string>> codes, Func<E, string> json)
    {
        return new Module
        {
            Codes = text => Distinct(codes(decode(text), Reference)),
            RoundTrip = text => json(decode(text)),
        };
    }

    private static void Conformance(string corpus)
    {
        var modules = new Dictionary<string, Module>
        {
            { "game_events", Of(Game.GameEventsContract.Decode, (e, t) => e.Validate(t).Select(v => v.Code), e => e.ToJson()) },
            { "match_events", Of(Match.MatchEventsContract.Decode, (e, t) => e.Validate(t).Select(v => v.Code), e => e.ToJson()) },
            { "all_types", Of(Contractc.AllTypes.AllTypesContract.Decode, (e, t) => e.Validate(t).Select(v => v.Code), e => e.ToJson()) },
            { "minimal", Of(Contractc.Minimal.MinimalContract.Decode, (e, t) => e.Validate(t).Select(v => v.Code), e => e.ToJson()) },
            { "player_profiles", Of(Contractc.PlayerProfiles.PlayerProfilesContract.Decode, (e, t) => e.Validate(t).Select(v => v.Code), e => e.ToJson()) },
        };
        var shape = new[] { "missing", "wrong_type", "unknown_field", "duplicate_field", "invalid_json" };
        var report = new List<string>();
        foreach (var entry in modules)
        {
            var module = entry.Value;
            var lines = File.ReadAllLines(Path.Combine(corpus, entry.Key + ".ndjson")).Where(l => l.Length > 0).ToArray();
            var expressible = 0;
            foreach (var line in lines)
            {
                var c = Game.Read.Object(Game.Json.Parse(line), null);
                var name = Game.Read.String(c.Get("name"));
                var body = Game.Read.String(c.Get("body"));
                var labels = Distinct(Game.Read.List(c.Get("codes"), Game.Read.String));
                string[] codes;
                try
                {
                    codes = module.Codes(body);
                }
                catch (Exception error)
                {
                    Test(entry.Key + ": " + name + ": not expressible only for shape errors", () =>
                    {
                        Assert(error.GetType().Name == "DecodeException", "decode threw " + error);
                        Assert(labels.Length > 0, "a valid event cannot be written with the types");
                        var allowed = new List<string>(shape);
                        // The types also make these impossible: an unknown variant or a value outside an
                        // enum (one_of), an unparseable date, timestamp or uuid (invalid_format), an
                        // integer outside the C# type (out_of_range).
                        if (error.Message.StartsWith("unknown ", StringComparison.Ordinal) || error.Message.Contains("is not one of")) allowed.Add("one_of");
                        if (error.Message.Contains("DateTime") || error.Message.Contains("uuid")) allowed.Add("invalid_format");
                        if (error.Message.StartsWith("does not fit", StringComparison.Ordinal) || error.Message.StartsWith("not a long", StringComparison.Ordinal)) allowed.Add("out_of_range");
                        var other = labels.Where(l => !allowed.Contains(l)).ToArray();
                        Assert(other.Length == 0, "labels " + string.Join(",", labels) + " are not shape errors (" + error.Message + ")");
                    });
                    continue;
                }
                expressible++;
                var caseName = entry.Key + ": " + name;
                var got = codes;
                Test(caseName, () =>
                {
                    EqualSeq(labels, got, "codes");
                    EqualSeq(labels, module.Codes(module.RoundTrip(body)), "codes after ToJson/Decode");
                });
            }
            report.Add("# " + entry.Key + ": " + expressible + " of " + lines.Length + " cases expressible");
        }
        foreach (var line in report) Console.WriteLine(line);
    }

    // ----- unit: a scripted transport --------------------------------------------------------------

    private sealed class Call
    {
        public string Method;
        public string Url;
        public Dictionary<string, string> Headers;
        public string ContentType;
        public string Body;
    }

    private sealed class FakeTransport : Game.IHttpTransport
    {
        public readonly List<Call> Calls = new List<Call>();
        public Func<Call, Game.HttpAnswer> Script;

        public Task<Game.HttpAnswer> SendAsync(string method, string url, IDictionary<string, string> headers, string contentType, string body)
        {
            var call = new Call { Method = method, Url = url, Headers = new Dictionary<string, string>(headers), ContentType = contentType, Body = body };
            Calls.Add(call);
            if (url.Contains("/login-as-guest"))
            {
                return Task.FromResult(new Game.HttpAnswer(200, "{\"user_id\":\"11111111-1111-4111-8111-111111111111\",\"guest_secret\":\"secret\",\"auth_token\":\"token-1\",\"refresh_token\":\"refresh-1\",\"auth_token_expires_in\":900,\"refresh_token_expires_in\":518400}"));
            }
            var source = new TaskCompletionSource<Game.HttpAnswer>();
            try
            {
                source.SetResult(Script(call));
            }
            catch (Exception error)
            {
                source.SetException(error);
            }
            return source.Task;
        }
    }

    private static Game.Event Login(string id)
    {
        return new Game.LoginEvent(id, DateTime.UtcNow.Date);
    }

    private static Game.ContractClient<Game.Event> Client(FakeTransport transport, List<int> sleeps, Game.IKeyValueStore store = null, Func<DateTime> now = null, int maxQueued = 1000, int attempts = 5, int maxBatchEvents = 0, int maxBodyBytes = 0, Game.ITokenProvider provider = null)
    {
        var info = Game.GameEventsContract.Info;
        if (maxBatchEvents > 0)
        {
            info = new Game.ContractInfo { Name = info.Name, Version = info.Version, Route = info.Route, BatchRoute = info.BatchRoute, MaxBatchEvents = maxBatchEvents, MaxBodyBytes = maxBodyBytes > 0 ? maxBodyBytes : info.MaxBodyBytes };
        }
        return new Game.ContractClient<Game.Event>(info, new Game.ClientOptions
        {
            BaseUrl = "http://game.test/prod/",
            Transport = transport,
            Store = store ?? new Game.MemoryStore(),
            Random = () => 0.5,
            Sleep = ms => { sleeps.Add(ms); return Task.FromResult(0); },
            UtcNow = now,
            MaxQueuedEvents = maxQueued,
            MaxAttempts = attempts,
            TokenProvider = provider,
        });
    }

    /// <summary>A provider handing out game-1, game-2, … (expiring <c>Lifetime</c> after <c>Now()</c>), recording each forceRefresh.</summary>
    private sealed class CountingProvider : Game.ITokenProvider
    {
        public readonly List<bool> Asked = new List<bool>();
        public Func<DateTime> Now = () => DateTime.UtcNow;
        public TimeSpan? Lifetime = TimeSpan.FromSeconds(900);
        public Exception Failure;

        public Task<Game.ProvidedToken> GetTokenAsync(bool forceRefresh)
        {
            Asked.Add(forceRefresh);
            var answer = new TaskCompletionSource<Game.ProvidedToken>();
            if (Failure != null)
            {
                answer.SetException(Failure);
                return answer.Task;
            }
            var token = new Game.ProvidedToken { Token = "game-" + Asked.Count };
            if (Lifetime != null) token.ExpiresAt = new DateTimeOffset(Now() + Lifetime.Value, TimeSpan.Zero);
            answer.SetResult(token);
            return answer.Task;
        }

        public string Forced
        {
            get { return string.Join(",", Asked.Select(b => b ? "force" : "cached").ToArray()); }
        }
    }

    private static string Tokens(FakeTransport t)
    {
        return string.Join(" ", t.Calls.Select(c => c.Headers["Authorization"]).ToArray());
    }

    /// <summary>The event ids of a batch request; fails unless its body is a JSON array.</summary>
    private static List<string> Ids(Call call)
    {
        var list = Game.Json.Parse(call.Body) as List<object>;
        Assert(list != null, "batch body is not a JSON array: " + call.Body);
        return list.Select(e => Game.Read.String(Game.Read.Object(e, null).Get("event_id"))).ToList();
    }

    private static List<Call> Batches(FakeTransport t)
    {
        return t.Calls.Where(c => c.Url.EndsWith("/prod/put-records", StringComparison.Ordinal)).ToList();
    }

    private static string Requests(FakeTransport t)
    {
        return string.Join(" ", Batches(t).Select(c => "[" + string.Join(",", Ids(c).ToArray()) + "]").ToArray());
    }

    /// <summary>serve's batch answer: every event accepted, but the ids in <paramref name="rejected"/>.</summary>
    private static Game.HttpAnswer ServeAnswer(Call call, params string[] rejected)
    {
        var results = Ids(call).Select((id, i) => "{\"index\":" + i + ",\"verdict\":\"" + (rejected.Contains(id) ? "reject" : "accept") + "\",\"violations\":[]}");
        return new Game.HttpAnswer(200, "{\"request_id\":\"r\",\"results\":[" + string.Join(",", results.ToArray()) + "]}");
    }

    /// <summary>The deployed API's batch answer: every event added, but the ids in <paramref name="failing"/> (then a 500).</summary>
    private static Game.HttpAnswer AwsAnswer(Call call, params string[] failing)
    {
        var ids = Ids(call);
        var results = ids.Select((id, i) => failing.Contains(id)
            ? "{\"index\":" + i + ",\"result\":\"failed\",\"error\":\"ProvisionedThroughputExceededException\",\"message\":\"Rate exceeded\"}"
            : "{\"index\":" + i + ",\"result\":\"added\"}");
        var failed = ids.Count(failing.Contains);
        return new Game.HttpAnswer(failed > 0 ? 500 : 200, "{\"request_id\":\"r\",\"added\":" + (ids.Count - failed) + ",\"failed\":" + failed + ",\"results\":[" + string.Join(",", results.ToArray()) + "]}");
    }

    private static int Posts(FakeTransport t, string suffix)
    {
        return t.Calls.Count(c => c.Url.EndsWith(suffix, StringComparison.Ordinal));
    }

    private static Exception Thrown(Func<Task> action)
    {
        try
        {
            action().Wait();
        }
        catch (AggregateException error)
        {
            return error.InnerException;
        }
        catch (Exception error)
        {
            return error;
        }
        return null;
    }

    private static void Unit()
    {
        Test("retries network errors and 5xx with growing jittered backoff, then succeeds", () =>
        {
            var n = 0;
            var t = new FakeTransport();
            t.Script = call =>
            {
                n++;
                if (n == 1) throw new IOException("connection refused");
                if (n == 2) return new Game.HttpAnswer(503, "busy");
                return new Game.HttpAnswer(200, "\"Successfully added event\"");
            };
            var sleeps = new List<int>();
            var answer = Client(t, sleeps).SendAsync(Login("e1")).Result;
            Equal(200, answer.Status, "status");
            Equal(3, Posts(t, "/prod/put-record"), "put-record calls");
            EqualSeq(new[] { "100", "200" }, sleeps.Select(s => s.ToString()), "backoff");
        });
        Test("never retries a 4xx", () =>
        {
            var t = new FakeTransport { Script = call => new Game.HttpAnswer(400, "{\"message\":\"bad\"}") };
            var error = Thrown(() => Client(t, new List<int>()).SendAsync(Login("e1")));
            Assert(error is Game.HttpException && ((Game.HttpException)error).Status == 400, "expected HttpException 400, got " + error);
            Equal(1, Posts(t, "/prod/put-record"), "put-record calls");
        });
        Test("gives up after MaxAttempts on a persistent 5xx", () =>
        {
            var t = new FakeTransport { Script = call => new Game.HttpAnswer(502, "bad gateway") };
            var error = Thrown(() => Client(t, new List<int>(), attempts: 3).SendAsync(Login("e1")));
            Assert(error is Game.HttpException && ((Game.HttpException)error).Status == 502, "expected HttpException 502, got " + error);
            Equal(3, Posts(t, "/prod/put-record"), "attempts");
        });
        Test("an invalid event is refused locally and never sent", () =>
        {
            var t = new FakeTransport { Script = call => new Game.HttpAnswer(200, "\"ok\"") };
            var error = Thrown(() => Client(t, new List<int>()).SendAsync(new Game.LoginEvent("a b", DateTime.UtcNow)));
            Assert(error is Game.ContractViolationException, "expected ContractViolationException, got " + error);
            var v = ((Game.ContractViolationException)error).Violations;
            EqualSeq(new[] { "pattern $.event_id Reject" }, v.Select(x => x.Code + " " + x.Path + " " + x.Policy), "violations");
            Equal(0, t.Calls.Count, "requests");
        });
        Test("refreshes the token before it expires; logs in again when the refresh is refused", () =>
        {
            var clock = DateTime.UtcNow;
            var refreshOk = true;
            var t = new FakeTransport();
            t.Script = call =>
            {
                if (call.Url.Contains("/refresh-access-token"))
                {
                    return refreshOk ? new Game.HttpAnswer(200, "{\"auth_token\":\"token-2\",\"auth_token_expires_in\":900}") : new Game.HttpAnswer(401, "{\"message\":\"Unauthorized\"}");
                }
                return new Game.HttpAnswer(200, "\"ok\"");
            };
            var client = Client(t, new List<int>(), now: () => clock);
            client.SendAsync(Login("e1")).Wait();
            Equal("token-1", t.Calls[1].Headers["Authorization"], "first token");
            clock = clock.AddSeconds(845);
            client.SendAsync(Login("e2")).Wait();
            Equal("http://game.test/prod/refresh-access-token?refresh_token=refresh-1", t.Calls[2].Url, "refresh call");
            Equal("token-2", t.Calls[3].Headers["Authorization"], "refreshed token");
            clock = clock.AddSeconds(900);
            refreshOk = false;
            client.SendAsync(Login("e3")).Wait();
            EqualSeq(
                new[]
                {
                    "http://game.test/prod/refresh-access-token?refresh_token=refresh-1",
                    "http://game.test/prod/login-as-guest?user_id=11111111-1111-4111-8111-111111111111&guest_secret=secret",
                    "http://game.test/prod/put-record",
                },
                t.Calls.Skip(4).Select(c => c.Url),
                "refused refresh, then the returning guest's login");
        });
        Test("every request carries X-Contract-Version", () =>
        {
            var t = new FakeTransport
            {
                Script = call => call.Url.EndsWith("/put-records", StringComparison.Ordinal) ? ServeAnswer(call) : new Game.HttpAnswer(200, "\"ok\""),
            };
            var client = Client(t, new List<int>());
            client.SendAsync(Login("e1")).Wait();
            client.SendBatchAsync(new[] { Login("e2"), Login("e3") }).Wait();
            Equal(3, t.Calls.Count, "calls");
            foreach (var call in t.Calls) Equal("1.2.0", call.Headers["X-Contract-Version"], "header on " + call.Url);
        });
        Test("each event gets a UUIDv7 when it is made, and every retry of it carries the same", () =>
        {
            var n = 0;
            var t = new FakeTransport();
            t.Script = call => ++n < 3 ? new Game.HttpAnswer(503, "busy") : new Game.HttpAnswer(200, "\"Successfully added event\"");
            var e = (Game.LoginEvent)Login("e1");
            var id = e.EventUuid.Value.ToString("D");
            Assert(System.Text.RegularExpressions.Regex.IsMatch(id, "^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"), "a UUIDv7: " + id);
            Assert(((Game.LoginEvent)Login("e2")).EventUuid != e.EventUuid, "two events, two ids");
            Client(t, new List<int>()).SendAsync(e).Wait();
            var sent = t.Calls.Where(c => c.Url.EndsWith("/prod/put-record", StringComparison.Ordinal)).Select(c => c.Body).ToList();
            Equal(3, sent.Count, "attempts");
            foreach (var body in sent) Assert(body.Contains("\"event_uuid\":\"" + id + "\""), "the id in " + body);
        });
        Test("the queue is bounded: the oldest events are dropped first and counted", () =>
        {
            var t = new FakeTransport { Script = call => ServeAnswer(call) };
            var client = Client(t, new List<int>(), maxQueued: 2);
            client.Enqueue(Login("e1"));
            client.Enqueue(Login("e2"));
            client.Enqueue(Login("e3"));
            Equal(2, client.Queued, "queued");
            Equal(1, client.Dropped, "dropped");
            var result = client.FlushAsync().Result;
            Equal(2, result.Accepted, "accepted");
            Equal(0, result.Remaining, "remaining");
            var batch = t.Calls.First(c => c.Url.EndsWith("/put-records", StringComparison.Ordinal));
            EqualSeq(new[] { "e2", "e3" }, Ids(batch), "batch");
            Equal("application/json", batch.ContentType, "content type");
        });
        Test("a failed flush keeps the events for the next one", () =>
        {
            var up = false;
            var t = new FakeTransport();
            t.Script = call =>
            {
                if (!up) throw new IOException("offline");
                return ServeAnswer(call);
            };
            var client = Client(t, new List<int>(), attempts: 2);
            client.Enqueue(Login("e1"));
            Assert(Thrown(() => client.FlushAsync()) is IOException, "the offline flush fails");
            Equal(1, client.Queued, "still queued");
            up = true;
            Equal(1, client.FlushAsync().Result.Accepted, "second flush");
            Equal(0, client.Queued, "empty");
        });
        Test("a batch goes out as JSON arrays of at most MaxBatchEvents; verdicts map back to their events", () =>
        {
            var t = new FakeTransport { Script = call => ServeAnswer(call, "e3") };
            var result = Client(t, new List<int>(), maxBatchEvents: 2).SendBatchAsync(new[] { "e1", "e2", "e3", "e4", "e5" }.Select(Login).ToList()).Result;
            Equal("[e1,e2] [e3,e4] [e5]", Requests(t), "requests");
            foreach (var call in Batches(t)) Equal("application/json", call.ContentType, "content type");
            EqualSeq(new[] { "Accepted", "Accepted", "Rejected", "Accepted", "Accepted" }, result.Results.Select(r => r.Outcome.ToString()), "per event");
            EqualSeq(new[] { "5", "4", "1", "0" }, new[] { result.Sent, result.Accepted, result.Rejected, result.Failed }.Select(x => x.ToString()), "sent, accepted, rejected, failed");
        });
        Test("never more than 500 events per request, whatever the contract allows", () =>
        {
            var t = new FakeTransport { Script = call => ServeAnswer(call) };
            var client = Client(t, new List<int>(), maxQueued: 2000, maxBatchEvents: 1000);
            for (var i = 0; i < 501; i++) client.Enqueue(Login("q" + i));
            var result = client.FlushAsync().Result;
            EqualSeq(new[] { "500", "1" }, Batches(t).Select(c => Ids(c).Count.ToString()), "request sizes");
            Equal(501, result.Accepted, "accepted");
            Equal(0, result.Remaining, "remaining");
        });
        Test("a batch request stays within max_body_bytes × max_batch_events bytes (and 3 MB)", () =>
        {
            var t = new FakeTransport { Script = call => ServeAnswer(call) };
            var all = Enumerable.Range(0, 10).Select(i => "e" + i).ToList();
            var result = Client(t, new List<int>(), maxBatchEvents: 10, maxBodyBytes: 40).SendBatchAsync(all.Select(Login).ToList()).Result;
            Assert(Batches(t).Count > 1, "one request");
            foreach (var call in Batches(t)) Assert(System.Text.Encoding.UTF8.GetByteCount(call.Body) <= 400, "a request of " + call.Body.Length + " bytes");
            EqualSeq(all, Batches(t).SelectMany(Ids), "every event once, in order");
            Equal(10, result.Accepted, "accepted");
            var big = new string('x', 100000);
            Equal(1, Game.Batches.Length(new[] { big }, 500, 100), "an event over the limit goes alone");
            Equal(29, Game.Batches.Length(Enumerable.Repeat(big, 40).ToList(), 500, Game.Batches.MaxRequestBytes), "3 MB");
        });
        Test("the deployed API's answer: a failed record is sent again alone, an added one never", () =>
        {
            var failing = new[] { "e2" };
            var t = new FakeTransport();
            t.Script = call =>
            {
                var answer = AwsAnswer(call, failing);
                failing = new string[0];
                return answer;
            };
            var sleeps = new List<int>();
            var result = Client(t, sleeps).SendBatchAsync(new[] { Login("e1"), Login("e2"), Login("e3") }).Result;
            Equal("[e1,e2,e3] [e2]", Requests(t), "requests");
            EqualSeq(new[] { "100" }, sleeps.Select(x => x.ToString()), "backoff before the retry");
            EqualSeq(new[] { "Added", "Added", "Added" }, result.Results.Select(r => r.Outcome.ToString()), "per event");
            EqualSeq(new[] { "3", "3", "0" }, new[] { result.Sent, result.Added, result.Failed }.Select(x => x.ToString()), "sent, added, failed");
        });
        Test("a record that keeps failing: SendBatchAsync throws BatchException saying which events were added", () =>
        {
            var t = new FakeTransport { Script = call => AwsAnswer(call, "e2") };
            var error = Thrown(() => Client(t, new List<int>(), attempts: 3).SendBatchAsync(new[] { Login("e1"), Login("e2"), Login("e3") }));
            Assert(error is Game.BatchException, "expected BatchException, got " + error);
            var batch = (Game.BatchException)error;
            EqualSeq(new[] { "Added", "Failed", "Added" }, batch.Result.Results.Select(r => r.Outcome.ToString()), "per event");
            Assert(batch.Result.Results[1].Error.StartsWith("ProvisionedThroughputExceededException", StringComparison.Ordinal), "error " + batch.Result.Results[1].Error);
            Assert(batch.InnerException is Game.HttpException && ((Game.HttpException)batch.InnerException).Status == 500, "inner " + batch.InnerException);
            Equal("[e1,e2,e3] [e2] [e2]", Requests(t), "requests");
        });
        Test("flush against the deployed API: added events leave the queue, a failing one stays", () =>
        {
            var failing = new[] { "e2" };
            var t = new FakeTransport();
            t.Script = call => AwsAnswer(call, failing);
            var client = Client(t, new List<int>(), attempts: 2);
            foreach (var id in new[] { "e1", "e2", "e3" }) client.Enqueue(Login(id));
            var error = Thrown(() => client.FlushAsync());
            Assert(error is Game.HttpException && ((Game.HttpException)error).Status == 500, "expected HttpException 500, got " + error);
            Equal(1, client.Queued, "still queued");
            failing = new string[0];
            var result = client.FlushAsync().Result;
            EqualSeq(new[] { "1", "1", "0" }, new[] { result.Sent, result.Added, result.Remaining }.Select(x => x.ToString()), "sent, added, remaining");
            Equal("[e1,e2,e3] [e2] [e2]", Requests(t), "requests: nothing added is sent again");
        });
        Test("a 5xx without results (\"Failed to add events\") sends the whole batch again", () =>
        {
            var n = 0;
            var t = new FakeTransport();
            t.Script = call => ++n == 1 ? new Game.HttpAnswer(500, "\"Failed to add events\"") : AwsAnswer(call);
            var result = Client(t, new List<int>()).SendBatchAsync(new[] { Login("e1"), Login("e2") }).Result;
            Equal("[e1,e2] [e1,e2]", Requests(t), "requests");
            Equal(2, result.Added, "added");
        });
        Test("a token provider replaces the guest login: its token is sent, no guest login", () =>
        {
            var t = new FakeTransport { Script = call => call.Url.EndsWith("/put-records", StringComparison.Ordinal) ? ServeAnswer(call) : new Game.HttpAnswer(200, "\"ok\"") };
            var p = new CountingProvider();
            var client = Client(t, new List<int>(), provider: p);
            client.SendAsync(Login("e1")).Wait();
            client.SendBatchAsync(new[] { Login("e2"), Login("e3") }).Wait();
            EqualSeq(new[] { "http://game.test/prod/put-record game-1", "http://game.test/prod/put-records game-1" }, t.Calls.Select(c => c.Url + " " + c.Headers["Authorization"]), "requests and their token");
            Equal("cached", p.Forced, "asked");
            Equal(null, client.UserId, "no guest identity");
        });
        Test("the provider is asked again within the refresh margin of its token's expiry, not forced", () =>
        {
            var clock = DateTime.UtcNow;
            var t = new FakeTransport { Script = call => new Game.HttpAnswer(200, "\"ok\"") };
            var p = new CountingProvider { Now = () => clock };
            var client = Client(t, new List<int>(), now: () => clock, provider: p);
            client.SendAsync(Login("e1")).Wait();
            clock = clock.AddSeconds(800);
            client.SendAsync(Login("e2")).Wait();
            clock = clock.AddSeconds(45);
            client.SendAsync(Login("e3")).Wait();
            Equal("game-1 game-1 game-2", Tokens(t), "tokens sent");
            Equal("cached,cached", p.Forced, "forceRefresh");
        });
        Test("a token without ExpiresAt is kept until a 401", () =>
        {
            var t = new FakeTransport { Script = call => new Game.HttpAnswer(200, "\"ok\"") };
            var p = new CountingProvider { Lifetime = null };
            var client = Client(t, new List<int>(), provider: p);
            foreach (var id in new[] { "e1", "e2", "e3" }) client.SendAsync(Login(id)).Wait();
            Equal("game-1 game-1 game-1", Tokens(t), "tokens sent");
            Equal("cached", p.Forced, "asked once");
        });
        Test("a 401 asks the provider again with forceRefresh and retries once (batch and single)", () =>
        {
            // The server stops taking a token once it was sent (revoked, or expired early).
            var refused = new HashSet<string>();
            var t = new FakeTransport();
            t.Script = call => refused.Contains(call.Headers["Authorization"]) ? new Game.HttpAnswer(401, "{\"message\":\"Unauthorized\"}")
                : call.Url.EndsWith("/put-records", StringComparison.Ordinal) ? ServeAnswer(call) : new Game.HttpAnswer(200, "\"ok\"");
            var p = new CountingProvider();
            var client = Client(t, new List<int>(), provider: p);
            Equal(200, client.SendAsync(Login("e1")).Result.Status, "single");
            refused.Add("game-1");
            client.Enqueue(Login("e2"));
            client.Enqueue(Login("e3"));
            var result = client.FlushAsync().Result;
            EqualSeq(new[] { "2", "0" }, new[] { result.Accepted, result.Remaining }.Select(x => x.ToString()), "accepted, remaining");
            refused.Add("game-2");
            Equal(200, client.SendAsync(Login("e4")).Result.Status, "single after a 401");
            Equal("game-1 game-1 game-2 game-2 game-3", Tokens(t), "tokens sent");
            Equal("cached,force,force", p.Forced, "forceRefresh");
            Equal("[e2,e3] [e2,e3]", Requests(t), "batch requests");
        });
        Test("a second 401 is an HttpException; the queued events stay for the next flush", () =>
        {
            var refuseAll = true;
            var t = new FakeTransport();
            t.Script = call => refuseAll ? new Game.HttpAnswer(401, "{\"message\":\"Unauthorized\"}") : ServeAnswer(call);
            var p = new CountingProvider();
            var client = Client(t, new List<int>(), provider: p);
            client.Enqueue(Login("e1"));
            client.Enqueue(Login("e2"));
            var error = Thrown(() => client.FlushAsync());
            Assert(error is Game.HttpException && ((Game.HttpException)error).Status == 401, "expected HttpException 401, got " + error);
            Equal(2, Batches(t).Count, "the request and its one retry");
            Equal(2, client.Queued, "still queued");
            refuseAll = false;
            var result = client.FlushAsync().Result;
            EqualSeq(new[] { "2", "0" }, new[] { result.Accepted, result.Remaining }.Select(x => x.ToString()), "next flush");
            Equal("cached,force", p.Forced, "forceRefresh");
        });
        Test("a provider that fails is retried as a network error; the events stay queued", () =>
        {
            var t = new FakeTransport { Script = call => ServeAnswer(call) };
            var p = new CountingProvider { Failure = new IOException("the game's backend is down") };
            var client = Client(t, new List<int>(), attempts: 2, provider: p);
            client.Enqueue(Login("e1"));
            var error = Thrown(() => client.FlushAsync());
            Assert(error is IOException, "the provider's error, got " + error);
            EqualSeq(new[] { "2", "0", "1" }, new[] { p.Asked.Count, t.Calls.Count, client.Queued }.Select(x => x.ToString()), "asked, requests, queued");
            p.Failure = null;
            Equal(1, client.FlushAsync().Result.Accepted, "next flush");
        });
    }

    /// <summary>The real transport, recording what was sent.</summary>
    private sealed class RecordingTransport : Game.IHttpTransport
    {
        public readonly List<Call> Calls = new List<Call>();
        private readonly Game.HttpClientTransport inner = new Game.HttpClientTransport();

        public Task<Game.HttpAnswer> SendAsync(string method, string url, IDictionary<string, string> headers, string contentType, string body)
        {
            lock (Calls) Calls.Add(new Call { Method = method, Url = url, ContentType = contentType, Body = body });
            return inner.SendAsync(method, url, headers, contentType, body);
        }
    }

    // ----- end to end -----------------------------------------------------------------------------

    /// <summary>A producer for tests/exactly_once.py: makes COUNT events (each gets its UUIDv7 when
    /// it is made), queues them persistently and flushes until the queue is empty, through a proxy
    /// that loses answers, resets uploads and answers late; killed with -9 and started again, it
    /// goes on from its queue and its log of what it made (STATE_DIR/produced.ndjson).</summary>
    private static int Faults(string baseUrl, string stateDir, int count)
    {
        Directory.CreateDirectory(stateDir);
        var log = Path.Combine(stateDir, "produced.ndjson");
        var made = File.Exists(log) ? File.ReadAllLines(log).Count(line => line.Trim().Length > 0) : 0;
        var client = Game.GameEventsContract.CreateClient(new Game.ClientOptions
        {
            BaseUrl = baseUrl,
            Store = new Game.FileStore(Path.Combine(stateDir, "client.json")),
            // Shorter than the proxy's delay: a slow answer is abandoned and the events sent again.
            Transport = new Game.HttpClientTransport(TimeSpan.FromMilliseconds(1500)),
            MaxAttempts = 3,
        });
        Action flush = () =>
        {
            try { client.FlushAsync().Wait(); }
            catch (Exception) { System.Threading.Thread.Sleep(200); }
        };
        for (var n = made; n < count; n++)
        {
            var e = new Game.LoginEvent("cs-" + n, Game.Timestamps.LocalWallClock()) { EventData = "fault test" };
            // Queued (persisted) first, then logged: a kill between the two leaves an event made
            // but not logged, never one logged but lost.
            client.Enqueue(e);
            File.AppendAllText(log, "{\"event_uuid\":\"" + e.EventUuid.Value.ToString("D") + "\"}\n");
            if (n % 7 == 6) flush();
        }
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (client.Queued > 0 && DateTime.UtcNow < deadline) flush();
        Console.WriteLine("csharp producer: " + count + " made, " + client.Queued + " still queued");
        return client.Queued == 0 ? 0 : 1;
    }

    private static void EndToEnd(string baseUrl, string stateDir)
    {
        var wallClock = Game.Timestamps.LocalWallClock();
        var n = 0;
        Func<Game.Event> next = () =>
        {
            n++;
            return new Game.LoginEvent("cs-" + n, wallClock) { EventData = "c# \"client\" é 🐢 " + n };
        };
        Func<string, Game.FileStore> store = name => new Game.FileStore(Path.Combine(stateDir, name + ".json"));
        var recording = new RecordingTransport();
        Func<string, Game.ContractClient<Game.Event>> client = name => Game.GameEventsContract.CreateClient(new Game.ClientOptions { BaseUrl = baseUrl, Store = store(name), Transport = recording });

        Test("guest login keeps user_id and guest_secret; a returning guest gets the same user", () =>
        {
            var first = client("login");
            first.LoginAsync().Wait();
            var user = first.UserId;
            Assert(user != null && user.Length == 36, "user_id " + user);
            var again = client("login");
            again.LoginAsync().Wait();
            Equal(user, again.UserId, "returning guest");
        });
        var c = client("game");
        Test("a single event lands: 200 \"Successfully added event\"", () =>
        {
            var answer = c.SendAsync(new Game.NewGameEvent("cs-single", wallClock) { EventData = "first event" }).Result;
            Equal(200, answer.Status, "status");
            Equal("\"Successfully added event\"", answer.Body, "body");
        });
        Test("a batch lands: every event accepted", () =>
        {
            var answer = c.SendBatchAsync(new[] { next(), next(), next() }).Result;
            EqualSeq(new[] { "3", "0", "0", "0" }, new[] { answer.Accepted, answer.Quarantined, answer.Rejected, answer.Failed }.Select(x => x.ToString()), "accepted, quarantined, rejected, failed");
            EqualSeq(new[] { "Accepted", "Accepted", "Accepted" }, answer.Results.Select(r => r.Outcome.ToString()), "per event");
        });
        Test("a batch goes out as a JSON array (application/json), as the deployed API takes it", () =>
        {
            var batches = recording.Calls.Where(x => x.Url.EndsWith("/prod/put-records", StringComparison.Ordinal)).ToList();
            Assert(batches.Count > 0, "no batch request recorded");
            foreach (var b in batches)
            {
                Equal("application/json", b.ContentType, "content type");
                var list = Game.Json.Parse(b.Body) as List<object>;
                Assert(list != null && list.Count >= 1 && list.Count <= 500, "body is not a JSON array of 1..500: " + b.Body);
            }
        });
        Test("an invalid event is refused locally with the server's code and path, and never sent", () =>
        {
            var error = Thrown(() => c.SendAsync(new Game.EndGameEvent("not valid!", wallClock)));
            Assert(error is Game.ContractViolationException, "expected ContractViolationException, got " + error);
            EqualSeq(new[] { "pattern $.event_id" }, ((Game.ContractViolationException)error).Violations.Select(v => v.Code + " " + v.Path), "violations");
        });
        Test("queued events survive a client that dies without flushing", () =>
        {
            var dying = client("queue");
            for (var i = 0; i < 5; i++) dying.Enqueue(next());
            var revived = client("queue");
            Equal(5, revived.Queued, "queued after restart");
            var result = revived.CloseAsync().Result;
            Equal(5, result.Accepted, "accepted");
            Equal(0, revived.Queued, "queue empty");
        });
        Test("match_events (scope authenticated): single and batch", () =>
        {
            var m = Match.MatchEventsContract.CreateClient(new Match.ClientOptions { BaseUrl = baseUrl, LoginQuery = "scope=authenticated" });
            Func<Match.Event> started = () => new Match.MatchStartedEvent(
                Guid.NewGuid(), DateTimeOffset.UtcNow, "m-0123456789ab", Match.Region.EuWest,
                new Match.Build("1.2.3") { Platform = Match.Platform.Pc }, "harbour",
                new List<Match.PlayersItem> { new Match.PlayersItem(Guid.NewGuid()) { Skill = 1200.5 }, new Match.PlayersItem(Guid.NewGuid()) });
            Equal(200, m.SendAsync(started()).Result.Status, "single");
            var ended = new Match.MatchEndedEvent(Guid.NewGuid(), DateTimeOffset.UtcNow, "m-0123456789ab", Match.Region.UsEast, new Match.Build("1.2.3"), 1800,
                new Dictionary<string, long> { { "alice", 10 }, { "bob", 12 } }) { PrizePool = 1500.25m };
            var answer = m.SendBatchAsync(new[] { started(), ended }).Result;
            Equal(2, answer.Accepted, "accepted");
        });
    }

    // ----- the game's own sign-in ---------------------------------------------------------------

    /// <summary>The game's sign-in for the tests: the test IdP's tokens (tests/clients/test_idp.py) for one subject.</summary>
    private sealed class IdpTokenProvider : Game.ITokenProvider
    {
        private readonly Game.HttpClientTransport http = new Game.HttpClientTransport();
        public string Idp;
        public string Subject;
        public Func<DateTime> Now;
        /// <summary>Every forceRefresh the client asked with, in order.</summary>
        public readonly List<bool> Asked = new List<bool>();

        public async Task<Game.ProvidedToken> GetTokenAsync(bool forceRefresh)
        {
            Asked.Add(forceRefresh);
            var answer = await http.SendAsync("GET", Idp + "/token?sub=" + Uri.EscapeDataString(Subject), new Dictionary<string, string>(), null, null);
            if (answer.Status != 200) throw new IOException("the IdP answered " + answer.Status);
            var body = Game.Read.Object(Game.Json.Parse(answer.Body), null);
            var expiresIn = Game.Read.Long(body.Get("expires_in"));
            return new Game.ProvidedToken { Token = Game.Read.String(body.Get("access_token")), ExpiresAt = new DateTimeOffset(Now(), TimeSpan.Zero).AddSeconds(expiresIn) };
        }

        public string Forced(int from)
        {
            return string.Join(",", Asked.Skip(from).Select(b => b ? "force" : "cached").ToArray());
        }

        /// <summary>The IdP's next <paramref name="count"/> tokens for the subject are already expired.</summary>
        public void ExpireNext(int count)
        {
            var answer = http.SendAsync("POST", Idp + "/expire-next?sub=" + Uri.EscapeDataString(Subject) + "&count=" + count, new Dictionary<string, string>(), "application/json", "").Result;
            Equal(204, answer.Status, "expire-next");
        }
    }

    /// <summary>Against a real <c>serve --trust-issuer IDP</c>: a token provider backed by the test IdP in
    /// place of the guest login; the IdP hands out expired tokens on the way, and each costs one 401,
    /// one forced ask and one retry. The client's clock is ours, to reach the refresh margin at once.
    /// Writes STATE_DIR/sent.ndjson: the event_uuid of every event sent.</summary>
    private static void SignIn(string baseUrl, string idp, string subject, string stateDir)
    {
        Directory.CreateDirectory(stateDir);
        var clock = DateTime.UtcNow;
        var provider = new IdpTokenProvider { Idp = idp, Subject = subject, Now = () => clock };
        var client = Game.GameEventsContract.CreateClient(new Game.ClientOptions
        {
            BaseUrl = baseUrl,
            Store = new Game.FileStore(Path.Combine(stateDir, "client.json")),
            TokenProvider = provider,
            UtcNow = () => clock,
        });
        var sent = Path.Combine(stateDir, "sent.ndjson");
        var n = 0;
        Func<Game.Event> next = () =>
        {
            var e = new Game.LoginEvent("cs-sign-in-" + ++n, Game.Timestamps.LocalWallClock()) { EventData = "signed in by the game" };
            File.AppendAllText(sent, "{\"event_uuid\":\"" + e.EventUuid.Value.ToString("D") + "\"}\n");
            return e;
        };
        Test("an expired first token: serve answers 401, the provider is forced once and the event lands", () =>
        {
            provider.ExpireNext(1);
            Equal(200, client.SendAsync(next()).Result.Status, "status");
            Equal("cached,force", provider.Forced(0), "forceRefresh");
            Equal(null, client.UserId, "no guest login");
        });
        Test("a batch lands with the game's token, asking nothing more", () =>
        {
            var result = client.SendBatchAsync(new[] { next(), next(), next() }).Result;
            EqualSeq(new[] { "3", "0" }, new[] { result.Accepted, result.Failed }.Select(x => x.ToString()), "accepted, failed");
            Equal(2, provider.Asked.Count, "provider calls");
        });
        Test("within the refresh margin the provider is asked again; its expired token costs one forced retry", () =>
        {
            for (var i = 0; i < 5; i++) client.Enqueue(next());
            provider.ExpireNext(1);
            clock = clock.AddSeconds(120);
            var result = client.FlushAsync().Result;
            EqualSeq(new[] { "5", "0" }, new[] { result.Accepted, result.Remaining }.Select(x => x.ToString()), "accepted, remaining");
            Equal("cached,force", provider.Forced(2), "forceRefresh");
        });
        Test("a second 401 fails the flush and keeps the events queued; the next flush sends them", () =>
        {
            for (var i = 0; i < 3; i++) client.Enqueue(next());
            provider.ExpireNext(2);
            clock = clock.AddSeconds(120);
            var error = Thrown(() => client.FlushAsync());
            Assert(error is Game.HttpException && ((Game.HttpException)error).Status == 401, "expected HttpException 401, got " + error);
            Equal(3, client.Queued, "still queued");
            var result = client.FlushAsync().Result;
            EqualSeq(new[] { "3", "0" }, new[] { result.Accepted, result.Remaining }.Select(x => x.ToString()), "accepted, remaining");
            Equal("cached,force,cached", provider.Forced(4), "forceRefresh");
        });
    }
}
