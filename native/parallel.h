// Run f(part) for part in [0, parts) on that many threads, this one included.
#pragma once

#include <thread>
#include <vector>

template <typename F>
void parallel(int parts, F f) {
  std::vector<std::thread> helpers;
  for (int t = 1; t < parts; t++) helpers.emplace_back(f, t);
  f(0);
  for (auto& h : helpers) h.join();
}
