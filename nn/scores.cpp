#include "nn/scores.h"

#include <algorithm>
#include <cmath>

namespace rplayer::nn {

std::vector<std::pair<int, float>> top_k(const Tensor& scores, int k) {
  std::vector<std::pair<int, float>> v;
  for (size_t i = 0; i < scores.size(); i++) v.emplace_back(int(i), scores[i]);
  k = std::clamp<int>(k, 0, int(v.size()));
  std::partial_sort(v.begin(), v.begin() + k, v.end(), [](const auto& a, const auto& b) {
    return a.second > b.second || (a.second == b.second && a.first < b.first);
  });
  v.resize(k);
  return v;
}

Tensor as_probabilities(Tensor t) {
  if (t.size() == 0) return t;
  double sum = 0;
  bool nonneg = true;
  for (size_t i = 0; i < t.size(); ++i) {
    sum += t.data()[i];
    nonneg &= t.data()[i] >= 0;
  }
  if (nonneg && std::abs(sum - 1.0) < 1e-3) return t;
  float mx = t.data()[0];
  for (size_t i = 1; i < t.size(); ++i) mx = std::max(mx, t.data()[i]);
  double z = 0;
  for (size_t i = 0; i < t.size(); ++i) z += std::exp(double(t.data()[i] - mx));
  for (size_t i = 0; i < t.size(); ++i) t.data()[i] = float(std::exp(double(t.data()[i] - mx)) / z);
  return t;
}

}  // namespace rplayer::nn
