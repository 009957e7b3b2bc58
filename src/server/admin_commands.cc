#include "server/admin_commands.h"

#include <simdjson.h>

#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <vector>

#include "base/json_writer.h"

namespace affinity {
namespace {

struct Url {
  std::string host, port, base;
  bool tls = false;
};

// "http[s]://host:port[/prefix]".
bool ParseUrl(const std::string& url, Url* out, std::string* error) {
  out->tls = url.rfind("https://", 0) == 0;
  const std::string scheme = out->tls ? "https://" : "http://";
  if (url.rfind(scheme, 0) != 0) {
    *error = "--url must start with http:// or https:// (got '" + url + "')";
    return false;
  }
  std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  out->base = slash == std::string::npos ? "" : rest.substr(slash);
  if (!out->base.empty() && out->base.back() == '/') out->base.pop_back();
  rest = rest.substr(0, slash);
  const size_t colon = rest.rfind(':');
  out->host = colon == std::string::npos ? rest : rest.substr(0, colon);
  out->port = colon == std::string::npos ? (out->tls ? "443" : "80") : rest.substr(colon + 1);
  if (out->host.empty()) {
    *error = "--url has no host";
    return false;
  }
  return true;
}

namespace beast = boost::beast;
namespace http = beast::http;

// Writes `req` and reads the answer over a connected stream (plain or TLS).
template <class Stream>
http::response<http::string_body> Exchange(Stream& stream, const http::request<http::string_body>& req) {
  http::write(stream, req);
  beast::flat_buffer buffer;
  http::response<http::string_body> res;
  http::read(stream, buffer, res);
  return res;
}

// Over TLS: the server's certificate must verify against the system's CAs, or
// the PEM file $AFFINITY_CA_CERT (a private CA or a self-signed certificate),
// for the URL's host.
http::response<http::string_body> ExchangeTls(const Url& u, boost::asio::io_context& ioc,
                                              const http::request<http::string_body>& req) {
  namespace ssl = boost::asio::ssl;
  ssl::context ctx(ssl::context::tls_client);
  ctx.set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                  ssl::context::no_tlsv1_1);
  ctx.set_default_verify_paths();
  if (const char* ca = std::getenv("AFFINITY_CA_CERT"); ca && *ca) ctx.load_verify_file(ca);
  ctx.set_verify_mode(ssl::verify_peer);
  beast::ssl_stream<beast::tcp_stream> stream(ioc, ctx);
  boost::system::error_code not_ip;
  boost::asio::ip::make_address(u.host, not_ip);
  if (not_ip) SSL_set_tlsext_host_name(stream.native_handle(), u.host.c_str());  // SNI names hosts, not addresses
  stream.set_verify_callback(ssl::host_name_verification(u.host));
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(30));
  boost::asio::ip::tcp::resolver resolver(ioc);
  beast::get_lowest_layer(stream).connect(resolver.resolve(u.host, u.port));
  stream.handshake(ssl::stream_base::client);
  auto res = Exchange(stream, req);
  beast::error_code ec;
  stream.shutdown(ec);  // close_notify; the server's may be cut short
  return res;
}

// One request: 0 with the body in *out (2xx), else 1 after printing the
// server's error (or why it could not be reached) on stderr.
int Fetch(const std::string& url, const std::string& method, const std::string& target, const std::string& body,
          std::string* out) {
  Url u;
  std::string error;
  if (!ParseUrl(url, &u, &error)) {
    std::fprintf(stderr, "affinity: %s\n", error.c_str());
    return 1;
  }
  try {
    boost::asio::io_context ioc;
    http::request<http::string_body> req(http::string_to_verb(method), u.base + target, 11);
    req.set(http::field::host, u.host);
    req.set(http::field::content_type, "application/json");
    // A server with [auth] keys: the key from the environment, never from a flag (which `ps` shows).
    if (const char* key = std::getenv("AFFINITY_API_KEY"); key && *key)
      req.set(http::field::authorization, std::string("Bearer ") + key);
    req.body() = body;
    req.prepare_payload();
    http::response<http::string_body> res;
    if (u.tls) {
      res = ExchangeTls(u, ioc, req);
    } else {
      boost::asio::ip::tcp::resolver resolver(ioc);
      beast::tcp_stream stream(ioc);
      stream.expires_after(std::chrono::seconds(30));
      stream.connect(resolver.resolve(u.host, u.port));
      res = Exchange(stream, req);
      beast::error_code ec;
      stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    }
    if (res.result_int() / 100 == 2) {
      *out = res.body();
      return 0;
    }
    std::fprintf(stderr, "affinity: the server answered %u: %s\n", res.result_int(), res.body().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "affinity: cannot reach %s: %s (is `affinity serve` running there?)\n", url.c_str(), e.what());
    return 1;
  }
}

// One request; prints the body on stdout (2xx) or the server's error on stderr.
int Call(const std::string& url, const std::string& method, const std::string& target, const std::string& body) {
  std::string out;
  const int rc = Fetch(url, method, target, body, &out);
  if (rc == 0) std::printf("%s\n", out.c_str());
  return rc;
}

std::string ReadAll(const std::string& path, bool* ok) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      *ok = false;
      return "";
    }
    ss << in.rdbuf();
  }
  *ok = true;
  return ss.str();
}

// Percent-encodes all but RFC 3986's unreserved characters (a path segment).
std::string UrlEncode(const std::string& s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : s) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += char(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

// Ids are [A-Za-z0-9._-]: they go into the path as they are.
std::string Path(const std::string& id, const std::string& action) {
  return "/admin/experiments/" + id + (action.empty() ? "" : "/" + action);
}

// A scalar as a person reads it: strings bare, numbers short.
std::string Scalar(simdjson::dom::element e) {
  std::string_view sv;
  if (!e.get(sv)) return std::string(sv);
  if (e.is_null()) return "-";
  bool b;
  if (!e.get(b)) return b ? "yes" : "no";
  // Integers (counts, unix-ms times) exactly; other numbers short.
  int64_t i;
  if (e.is_int64() && !e.get(i)) return std::to_string(i);
  uint64_t u;
  if (e.is_uint64() && !e.get(u)) return std::to_string(u);
  double d;
  if (!e.get(d)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", d);
    return buf;
  }
  return simdjson::minify(e);
}

// "2026-12-07T07:00:00Z (12 min ago)" for a unix-ms time; "-" for none.
std::string When(int64_t ms, const Clock* clock) {
  if (ms <= 0) return "-";
  char when[32];
  std::time_t t = std::time_t(ms / 1000);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  const int64_t now = clock->NowMillis();
  const int64_t s = (now - ms) / 1000;
  char ago[48];
  if (s < 0) std::snprintf(ago, sizeof ago, " (in the future)");
  else if (s < 120) std::snprintf(ago, sizeof ago, " (%llds ago)", (long long)s);
  else if (s < 7200) std::snprintf(ago, sizeof ago, " (%lld min ago)", (long long)(s / 60));
  else std::snprintf(ago, sizeof ago, " (%.1f h ago)", double(s) / 3600);
  return when + std::string(ago);
}

// An object as indented "key  value" lines (nested objects indented further,
// arrays of scalars joined); keys ending in _ts are times.
void PrintIndented(simdjson::dom::object obj, int indent, const Clock* clock) {
  size_t width = 0;
  for (auto [key, value] : obj) width = std::max(width, key.size());
  for (auto [key, value] : obj) {
    const std::string k(key);
    simdjson::dom::object inner;
    simdjson::dom::array arr;
    int64_t ms;
    if (!value.get(inner)) {
      std::printf("%*s%s\n", indent, "", k.c_str());
      PrintIndented(inner, indent + 2, clock);
      continue;
    }
    std::printf("%*s%-*s", indent, "", int(width) + 2, k.c_str());
    if (!value.get(arr)) {
      std::string joined;
      for (auto x : arr) joined += (joined.empty() ? "" : ", ") + Scalar(x);
      std::printf("%s\n", joined.empty() ? "-" : joined.c_str());
    } else if (k.size() > 3 && k.compare(k.size() - 3, 3, "_ts") == 0 && !value.get(ms)) {
      std::printf("%s\n", When(ms, clock).c_str());
    } else {
      std::printf("%s\n", Scalar(value).c_str());
    }
  }
}

// GET /admin/features as a table, one group a line.
void PrintGroups(simdjson::dom::array groups, const Clock* clock) {
  std::printf("%-18s %-8s %-7s %-6s %-18s %-9s %-34s %s\n", "group", "kind", "source", "ttl", "owner", "protected",
              "fresh", "features");
  for (auto g : groups) {
    std::vector<std::string> names;
    simdjson::dom::array arr;
    if (!g["features"].get(arr))
      for (auto n : arr) names.push_back(Scalar(n));
    std::string features;
    if (names.size() > 6) {  // a factor group: its first and last, and how many
      features = names.front() + " ... " + names.back() + " (" + std::to_string(names.size()) + ")";
    } else {
      for (const auto& n : names) features += (features.empty() ? "" : ", ") + n;
    }
    int64_t ttl = 0, fresh = 0;
    if (g["ttl_seconds"].get(ttl)) ttl = 0;
    if (g["freshness_ts"].get(fresh)) fresh = 0;
    const std::string ttl_text = ttl <= 0 ? "none" : ttl % 3600 == 0 ? std::to_string(ttl / 3600) + "h"
                                                                      : std::to_string(ttl) + "s";
    std::printf("%-18s %-8s %-7s %-6s %-18s %-9s %-34s %s\n", Scalar(g["name"]).c_str(), Scalar(g["entity_kind"]).c_str(),
                Scalar(g["source"]).c_str(), ttl_text.c_str(), Scalar(g["owner"]).c_str(),
                Scalar(g["protected"]).c_str(), When(fresh, clock).c_str(), features.c_str());
  }
}

// The body of a 2xx as a table or indented lines (`json`: as it is).
int Show(const std::string& body, bool json, const Clock* clock) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (json || parser.parse(body).get(doc) || doc.get(obj)) {
    std::printf("%s\n", body.c_str());
    return 0;
  }
  simdjson::dom::array groups;
  if (!doc["groups"].get(groups)) {
    PrintGroups(groups, clock);
  } else {
    PrintIndented(obj, 0, clock);
  }
  return 0;
}

}  // namespace

std::unique_ptr<ExperimentCommands> AddExperimentCommands(CLI::App& app) {
  auto c = std::make_unique<ExperimentCommands>();
  auto* x = app.add_subcommand("experiment", "A/B experiments of a running server (its /admin/experiments API)");
  x->require_subcommand(1);
  auto url = [&](CLI::App* cmd) {
    cmd->add_option("--url", c->url, "the server's address")->capture_default_str();
  };
  c->create = x->add_subcommand("create", "create an experiment from a JSON definition (docs/experiments.md)");
  c->create->add_option("file", c->file, "the definition (JSON; - reads standard input)")->required();
  c->list = x->add_subcommand("list", "list the experiments and their arms");
  c->get = x->add_subcommand("get", "one experiment's definition and state");
  c->report = x->add_subcommand("report", "an experiment's per-arm metrics and statistics");
  c->stop = x->add_subcommand("stop", "stop an experiment (it stops assigning; its report stays)");
  c->stop->add_option("--reason", c->reason, "why (kept with the experiment)");
  for (CLI::App* cmd : {c->get, c->report, c->stop}) cmd->add_option("id", c->id, "the experiment's id")->required();
  for (CLI::App* cmd : {c->create, c->list, c->get, c->report, c->stop}) url(cmd);
  return c;
}

int RunExperimentCommand(const ExperimentCommands& c) {
  if (*c.create) {
    bool ok = false;
    const std::string body = ReadAll(c.file, &ok);
    if (!ok) {
      std::fprintf(stderr, "affinity: cannot read %s\n", c.file.c_str());
      return 1;
    }
    return Call(c.url, "POST", "/admin/experiments", body);
  }
  if (*c.list) return Call(c.url, "GET", "/admin/experiments", "");
  if (*c.get) return Call(c.url, "GET", Path(c.id, ""), "");
  if (*c.report) return Call(c.url, "GET", Path(c.id, "report"), "");
  if (*c.stop) {
    JsonWriter w;
    w.BeginObject().Key("reason").String(c.reason).EndObject();
    return Call(c.url, "POST", Path(c.id, "stop"), w.Release());
  }
  return -1;
}

std::unique_ptr<FeatureCommands> AddFeatureCommands(CLI::App& app) {
  auto c = std::make_unique<FeatureCommands>();
  auto* x = app.add_subcommand("features", "the feature store of a running server (its /admin/features API)");
  x->require_subcommand(1);
  c->list = x->add_subcommand("list", "every feature group: source, features, TTL, owner, protected, freshness");
  c->describe = x->add_subcommand("describe", "one feature group's declaration and freshness");
  c->describe->add_option("group", c->group, "the group's name")->required();
  c->get = x->add_subcommand("get", "one entity's record in a group: feature vector, freshness, provenance");
  c->get->add_option("group", c->group, "the group's name")->required();
  c->get->add_option("entity", c->entity, "the entity's id")->required();
  c->get->add_option("--with", c->with, "the pair's other entity (viewer_creator: a creator; viewer_entity: any)");
  for (CLI::App* cmd : {c->list, c->describe, c->get}) {
    cmd->add_option("--url", c->url, "the server's address")->capture_default_str();
    cmd->add_flag("--json", c->json, "print the server's JSON as it is");
  }
  return c;
}

int RunFeatureCommand(const FeatureCommands& c) {
  std::string body;
  if (*c.list) return Fetch(c.url, "GET", "/admin/features", "", &body) ? 1 : Show(body, c.json, c.clock);
  if (*c.get) {
    const std::string target = "/admin/features/" + UrlEncode(c.group) + "/" + UrlEncode(c.entity) +
                               (c.with.empty() ? "" : "?with=" + UrlEncode(c.with));
    return Fetch(c.url, "GET", target, "", &body) ? 1 : Show(body, c.json, c.clock);
  }
  if (*c.describe) {
    if (Fetch(c.url, "GET", "/admin/features", "", &body) != 0) return 1;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array groups;
    if (parser.parse(body).get(doc) || doc["groups"].get(groups)) {
      std::fprintf(stderr, "affinity: the server's /admin/features is not a list of groups\n");
      return 1;
    }
    std::string names;
    for (auto g : groups) {
      std::string_view name;
      if (g["name"].get(name)) continue;
      if (name == c.group) return Show(simdjson::minify(g), c.json, c.clock);
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    std::fprintf(stderr, "affinity: no feature group '%s' (groups: %s)\n", c.group.c_str(), names.c_str());
    return 1;
  }
  return -1;
}

std::unique_ptr<SimulateCommand> AddSimulateCommand(CLI::App& app) {
  auto c = std::make_unique<SimulateCommand>();
  c->cmd = app.add_subcommand("simulate",
                              "send a running server queries of a generated world's viewers, who click results on "
                              "their favourite topics (the learning loop's input: batch trains from it)");
  c->cmd->add_option("--world", c->world, "the folder `affinity generate` wrote (its entities.tsv)")->required();
  c->cmd->add_option("--queries", c->queries, "item queries to send")->capture_default_str()->check(CLI::Range(1, 1000000));
  c->cmd->add_option("--k", c->k, "results per query")->capture_default_str()->check(CLI::Range(1, 500));
  c->cmd->add_option("--seed", c->seed, "random seed (viewers and clicks)")->capture_default_str();
  c->cmd->add_option("--url", c->url, "the server's address")->capture_default_str();
  return c;
}

int RunSimulateCommand(const SimulateCommand& c) {
  if (!*c.cmd) return -1;
  std::ifstream in(c.world + "/entities.tsv");
  if (!in) {
    std::fprintf(stderr, "affinity: cannot read %s/entities.tsv (is --world a folder `affinity generate` wrote?)\n",
                 c.world.c_str());
    return 1;
  }
  std::map<std::string, std::string> topic;  // item -> its topic (the cohort column)
  std::vector<std::string> viewers;
  std::string line;
  std::getline(in, line);
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string x; std::getline(ss, x, '\t');) f.push_back(x);
    if (f.size() >= 4 && f[1] == "item") topic[f[0]] = f[3];
    if (f.size() >= 2 && f[1] == "user") viewers.push_back(f[0]);
  }
  if (viewers.empty() || topic.empty()) {
    std::fprintf(stderr, "affinity: %s/entities.tsv lists no users or no items\n", c.world.c_str());
    return 1;
  }
  std::mt19937_64 rng(c.seed);
  std::uniform_real_distribution<double> u(0, 1);
  simdjson::dom::parser parser;
  int clicked = 0, clicks = 0;
  for (int q = 0; q < c.queries; ++q) {
    const std::string& viewer = viewers[rng() % viewers.size()];
    // The viewer's favourite topics: the two most frequent among its recent events.
    std::string body;
    if (Fetch(c.url, "GET", "/affinity/viewers/" + UrlEncode(viewer) + "/events?limit=64", "", &body)) return 1;
    std::map<std::string, int> counts;
    simdjson::dom::element doc;
    simdjson::dom::array arr;
    if (!parser.parse(body).get(doc) && !doc["events"].get(arr))
      for (auto e : arr)
        if (auto t = topic.find(Scalar(e["entity_id"])); t != topic.end() && Scalar(e["action"]) != "hide")
          ++counts[t->second];
    std::vector<std::pair<int, std::string>> order;
    for (const auto& [t, n] : counts) order.push_back({-n, t});
    std::sort(order.begin(), order.end());
    std::set<std::string> favourite;
    for (size_t i = 0; i < order.size() && i < 2; ++i) favourite.insert(order[i].second);
    JsonWriter w;
    w.BeginObject().Key("viewer_id").String(viewer).Key("target").String("items").Key("k").Int(c.k);
    w.Key("explain").Bool(false).EndObject();
    if (Fetch(c.url, "POST", "/affinity/query", w.Release(), &body)) return 1;
    if (parser.parse(body).get(doc) || doc["results"].get(arr)) continue;
    const std::string rid = Scalar(doc["request_id"]);
    JsonWriter events;
    events.BeginObject().Key("events").BeginArray();
    int n = 0, pos = 0;
    for (auto r : arr) {
      const std::string id = Scalar(r["entity_id"]);
      auto t = topic.find(id);
      const bool liked = t != topic.end() && favourite.count(t->second);
      if (u(rng) < (liked ? 0.6 / (1 + 0.15 * pos) : 0.02)) {
        events.BeginObject().Key("viewer_id").String(viewer).Key("entity_id").String(id).Key("action").String("click");
        events.Key("context").BeginObject().Key("request_id").String(rid).EndObject().EndObject();
        ++n;
      }
      ++pos;
    }
    events.EndArray().EndObject();
    if (n == 0) continue;
    if (Fetch(c.url, "POST", "/affinity/feedback", events.Release(), &body)) return 1;
    ++clicked, clicks += n;
  }
  std::printf("simulated %d queries: %d responses clicked (%d clicks on each viewer's favourite topics, each naming "
              "its response)\n", c.queries, clicked, clicks);
  return 0;
}

int FetchAdmin(const std::string& url, const std::string& target, std::string* body) {
  return Fetch(url, "GET", target, "", body);
}

}  // namespace affinity
