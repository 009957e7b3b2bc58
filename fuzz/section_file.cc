// The section-file reader (base/section_file.h): snapshots' arrays and the
// live state's checkpoint, what someone with the data dir can change. An even
// first byte hands the reader the input as it is; an odd one builds a file
// with the writer from the input's pieces (so its checksums hold) and then
// overwrites one of its bytes, so the reader's checks past the checksum are
// reached too.
#include <unistd.h>

#include <cstdio>

#include "base/section_file.h"
#include "fuzz_util.h"

namespace {
using affinity::SectionFormat;
constexpr SectionFormat kFormats[] = {{std::string_view("AFFSNAP1", 8), false, 1},
                                      {std::string_view("AFFSNAP3", 8), true, 64},
                                      {std::string_view("AFFLIVE2", 8), true, 64}};

std::string Build(const uint8_t* data, size_t size) {
  affinity::SectionWriter w(kFormats[data[0] / 2 % 3]);
  size_t pos = 1;
  while (pos + 2 <= size) {
    const size_t name_len = data[pos] % 8, data_len = data[pos + 1];
    pos += 2;
    const size_t n = std::min(name_len, size - pos);
    const std::string name(reinterpret_cast<const char*>(data + pos), n);
    pos += n;
    const size_t m = std::min(data_len, size - pos);
    w.AddBytes(name, data + pos, m);
    pos += m;
  }
  std::string out = w.data();
  if (size >= 3 && !out.empty()) out[(size_t(data[size - 2]) * 256 + data[size - 1]) % out.size()] ^= data[size - 3] | 1;
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace affinity;
  if (size == 0) return 0;
  // In memory where there is a tmpfs: the reader maps a file.
  static const std::string path =
      std::string(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp") + "/affinity-fuzz-section-" + std::to_string(getpid());
  const std::string file = data[0] % 2 ? Build(data, size) : fuzz::Text(data + 1, size - 1);
  FILE* f = std::fopen(path.c_str(), "wb");
  fuzz::Require(f != nullptr, "the scratch file opens");
  std::fwrite(file.data(), 1, file.size(), f);
  std::fclose(f);
  SectionReader r;
  if (r.Open(path, {kFormats[0], kFormats[1], kFormats[2]}).ok()) {
    for (const std::string& name : r.names()) {
      std::vector<uint64_t> wide;
      r.Get(name, &wide);
      FrozenArray<float> view;
      r.Get(name, &view);
      fuzz::Require(view.size() * sizeof(float) <= r.file_bytes(), "a section lies within its file");
    }
  }
  return 0;
}
