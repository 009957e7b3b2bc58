// The experiment routes (docs/openapi.yaml, /admin/experiments): create, list,
// read, report and stop. Their bodies go through the API's JSON checks.
#include <string>

#include "api/requests.h"
#include "api/route_util.h"
#include "api/routes.h"

namespace affinity {
namespace {

HttpResponse FromJson(const absl::StatusOr<std::string>& j) {
  return j.ok() ? HttpResponse{200, *j} : FromStatus(j.status());
}

}  // namespace

void ApiRoutes::AddExperimentRoutes() {
  ExperimentService& x = *d_.experiments;
  AddRoute("GET", "/admin/experiments", "experiments", Scope::kAdmin, false,
           [&x](const HttpRequest&, const PathArgs&) { return HttpResponse{200, x.ListJson()}; });
  AddRoute("POST", "/admin/experiments", "experiments", Scope::kAdmin, true,
           [this](const HttpRequest& r, const PathArgs&) { return CreateExperiment(r); });
  AddRoute("GET", "/admin/experiments/{id}", "experiment", Scope::kAdmin, false,
           [&x](const HttpRequest&, const PathArgs& a) { return FromJson(x.GetJson(a.at("id"))); });
  AddRoute("GET", "/admin/experiments/{id}/report", "experiment_report", Scope::kAdmin, false,
           [&x](const HttpRequest&, const PathArgs& a) { return FromJson(x.ReportJson(a.at("id"))); });
  AddRoute("POST", "/admin/experiments/{id}/stop", "experiment_stop", Scope::kAdmin, true,
           [this](const HttpRequest& r, const PathArgs& a) { return StopExperiment(r, a.at("id")); });
}

HttpResponse ApiRoutes::CreateExperiment(const HttpRequest& req) {
  if (RequestError e = CheckJsonObject(req.body); !e.ok()) return ErrorResponse(e.status, e.code, e.message);
  auto created = d_.experiments->Create(req.body);
  if (!created.ok()) return FromStatus(created.status());
  return {201, *created};
}

HttpResponse ApiRoutes::StopExperiment(const HttpRequest& req, const std::string& id) {
  std::string reason = "stopped by an operator";
  if (RequestError e = ParseStopRequest(req.body, &reason); !e.ok()) return ErrorResponse(e.status, e.code, e.message);
  if (auto s = d_.experiments->Stop(id, reason); !s.ok()) return FromStatus(s);
  return FromJson(d_.experiments->GetJson(id));
}

}  // namespace affinity
