// Run f(part) for part in [0, parts) on that many threads, this one included.
#pragma once

#include <thread>
#include <vector>

// The most threads a kernel takes (the bindings refuse more): each is a fresh std::thread per call.
constexpr int MAX_THREADS = 256;

// A thread that cannot start, or a part that throws, rethrows here once every started thread has joined
// (a joinable std::thread destroyed unjoined would abort the process).
template <typename F>
void parallel(int parts, F f) {
  std::vector<std::thread> helpers;
  const auto join = [&helpers] {
    for (auto& h : helpers)
      if (h.joinable()) h.join();
  };
  try {
    helpers.reserve(parts > 1 ? parts - 1 : 0);
    for (int t = 1; t < parts; t++) helpers.emplace_back(f, t);
    f(0);
  } catch (...) {
    join();
    throw;
  }
  join();
}
