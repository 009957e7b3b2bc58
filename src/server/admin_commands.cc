#include "server/admin_commands.h"

#include <simdjson.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <cctype>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "base/json_writer.h"

namespace affinity {
namespace {

struct Url {
  std::string host, port, base;
};

// "http://host:port[/prefix]" (http only: the admin API listens on loopback or
// behind the operator's proxy).
bool ParseUrl(const std::string& url, Url* out, std::string* error) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    *error = "--url must start with http:// (got '" + url + "')";
    return false;
  }
  std::string rest = url.substr(scheme.size());
  const size_t slash = rest.find('/');
  out->base = slash == std::string::npos ? "" : rest.substr(slash);
  if (!out->base.empty() && out->base.back() == '/') out->base.pop_back();
  rest = rest.substr(0, slash);
  const size_t colon = rest.rfind(':');
  out->host = colon == std::string::npos ? rest : rest.substr(0, colon);
  out->port = colon == std::string::npos ? "80" : rest.substr(colon + 1);
  if (out->host.empty()) {
    *error = "--url has no host";
    return false;
  }
  return true;
}

// One request: 0 with the body in *out (2xx), else 1 after printing the
// server's error (or why it could not be reached) on stderr.
int Fetch(const std::string& url, const std::string& method, const std::string& target, const std::string& body,
          std::string* out) {
  namespace beast = boost::beast;
  namespace http = beast::http;
  Url u;
  std::string error;
  if (!ParseUrl(url, &u, &error)) {
    std::fprintf(stderr, "affinity: %s\n", error.c_str());
    return 1;
  }
  try {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::resolver resolver(ioc);
    beast::tcp_stream stream(ioc);
    stream.expires_after(std::chrono::seconds(30));
    stream.connect(resolver.resolve(u.host, u.port));
    http::request<http::string_body> req(http::string_to_verb(method), u.base + target, 11);
    req.set(http::field::host, u.host);
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    http::read(stream, buffer, res);
    beast::error_code ec;
    stream.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
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
  for (CLI::App* cmd : {c->list, c->describe, c->get})
    cmd->add_option("--url", c->url, "the server's address")->capture_default_str();
  return c;
}

int RunFeatureCommand(const FeatureCommands& c) {
  if (*c.list) return Call(c.url, "GET", "/admin/features", "");
  if (*c.get)
    return Call(c.url, "GET",
                "/admin/features/" + UrlEncode(c.group) + "/" + UrlEncode(c.entity) +
                    (c.with.empty() ? "" : "?with=" + UrlEncode(c.with)),
                "");
  if (*c.describe) {
    std::string body;
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
      if (name == c.group) {
        std::printf("%s\n", simdjson::minify(g).c_str());
        return 0;
      }
      names += (names.empty() ? "" : ", ") + std::string(name);
    }
    std::fprintf(stderr, "affinity: no feature group '%s' (groups: %s)\n", c.group.c_str(), names.c_str());
    return 1;
  }
  return -1;
}

}  // namespace affinity
