// Detection post-processing CPU kernels: SSD PriorBox / DetectionOutput and the YOLO
// v2 / v3 region decoders, with ncnn's NMS. Their output row count depends on the
// data: each writes rows of [label, score, xmin, ymin, xmax, ymax], possibly none.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

#include "nn/cpu_ops.h"
#include "nn/model_error.h"

namespace rplayer::nn::cpu {
namespace {

struct Box {
  float xmin, ymin, xmax, ymax;
  int label;
  float score;
};

float intersection(const Box& a, const Box& b) {
  if (a.xmin > b.xmax || a.xmax < b.xmin || a.ymin > b.ymax || a.ymax < b.ymin) return 0.f;
  return (std::min(a.xmax, b.xmax) - std::max(a.xmin, b.xmin)) *
         (std::min(a.ymax, b.ymax) - std::max(a.ymin, b.ymin));
}

// Greedy NMS over boxes already sorted by descending score.
std::vector<Box> nms(const std::vector<Box>& boxes, float threshold) {
  std::vector<Box> picked;
  std::vector<float> areas;
  for (const Box& a : boxes) {
    const float area = (a.xmax - a.xmin) * (a.ymax - a.ymin);
    bool keep = true;
    for (size_t j = 0; j < picked.size() && keep; j++) {
      const float inter = intersection(a, picked[j]);
      keep = inter / (area + areas[j] - inter) <= threshold;
    }
    if (keep) {
      picked.push_back(a);
      areas.push_back(area);
    }
  }
  return picked;
}

void sort_by_score(std::vector<Box>& boxes) {
  std::stable_sort(boxes.begin(), boxes.end(),
                   [](const Box& a, const Box& b) { return a.score > b.score; });
}

void write_boxes(const std::vector<Box>& boxes, Tensor& out) {
  out = Tensor(Shape::mat(6, int(boxes.size())));
  for (size_t i = 0; i < boxes.size(); i++) {
    float* r = out.data() + i * 6;
    r[0] = float(boxes[i].label + 1);  // +1: label 0 is the background
    r[1] = boxes[i].score;
    r[2] = boxes[i].xmin;
    r[3] = boxes[i].ymin;
    r[4] = boxes[i].xmax;
    r[5] = boxes[i].ymax;
  }
}

float sigmoid(float x) { return 1.f / (1.f + std::exp(-x)); }

// Some ncnn writers store float arrays as their int bit patterns (the arrays are
// untyped in ncnn); values that cannot be real indices or scales are read that way.
std::vector<float> float_array(const ParamDict& p, int id) {
  std::vector<float> v = p.get_floats(id);
  const std::vector<int> bits = p.get_ints(id);
  if (p.has(id) && p.values().at(id).kind == ParamValue::Kind::kIntArray) {
    for (size_t i = 0; i < v.size(); i++) {
      if (std::abs(bits[i]) >= (1 << 24)) std::memcpy(&v[i], &bits[i], sizeof(float));
    }
  }
  return v;
}

}  // namespace

void prior_box(const Layer& l, const Inputs& in, Outputs& out) {
  const ParamDict& p = l.params;
  const std::vector<float> min_sizes = p.get_floats(0), max_sizes = p.get_floats(1),
                           ratios = p.get_floats(2);
  const float variances[4] = {p.get_float(3, 0.1f), p.get_float(4, 0.1f), p.get_float(5, 0.2f),
                              p.get_float(6, 0.2f)};
  const bool flip = p.get_int(7, 1), clip = p.get_int(8, 0);
  const int w = in[0]->shape().w, h = in[0]->shape().h;
  int image_w = p.get_int(9, 0), image_h = p.get_int(10, 0);
  if (image_w == -233) image_w = in.at(1)->shape().w;
  if (image_h == -233) image_h = in.at(1)->shape().h;
  float step_w = p.get_float(11, -233.f), step_h = p.get_float(12, -233.f);
  if (step_w == -233.f) step_w = float(image_w) / float(w);
  if (step_h == -233.f) step_h = float(image_h) / float(h);
  const float offset = p.get_float(13, 0.f);
  float* box = out[0].data();
  auto emit = [&](float cx, float cy, float bw, float bh) {
    box[0] = (cx - bw * 0.5f) / image_w;
    box[1] = (cy - bh * 0.5f) / image_h;
    box[2] = (cx + bw * 0.5f) / image_w;
    box[3] = (cy + bh * 0.5f) / image_h;
    box += 4;
  };
  for (int i = 0; i < h; i++) {
    const float cy = offset * step_h + i * step_h;
    for (int j = 0; j < w; j++) {
      const float cx = offset * step_w + j * step_w;
      for (size_t k = 0; k < min_sizes.size(); k++) {
        const float mn = min_sizes[k];
        emit(cx, cy, mn, mn);
        if (!max_sizes.empty()) {
          const float s = std::sqrt(mn * max_sizes[k]);
          emit(cx, cy, s, s);
        }
        for (float ar : ratios) {
          emit(cx, cy, mn * std::sqrt(ar), mn / std::sqrt(ar));
          if (flip) emit(cx, cy, mn / std::sqrt(ar), mn * std::sqrt(ar));
        }
      }
    }
  }
  const size_t n = out[0].shape().w;
  if (clip)
    for (size_t i = 0; i < n; i++) out[0][i] = std::min(std::max(out[0][i], 0.f), 1.f);
  for (size_t i = 0; i < n; i++) out[0][n + i] = variances[i % 4];
}

void detection_output(const Layer& l, const Inputs& in, Outputs& out) {
  const ParamDict& p = l.params;
  const int num_class = p.get_int(0, 0), nms_top_k = p.get_int(2, 300),
            keep_top_k = p.get_int(3, 100);
  const float nms_threshold = p.get_float(1, 0.05f), conf_threshold = p.get_float(4, 0.5f);
  const float param_var[4] = {p.get_float(5, 0.1f), p.get_float(6, 0.1f), p.get_float(7, 0.2f),
                              p.get_float(8, 0.2f)};
  const Tensor &loc = *in[0], &conf = *in[1], &prior = *in[2];
  const int num_prior = prior.shape().w / 4;
  if (int(loc.size()) != num_prior * 4 || int(conf.size()) != num_prior * num_class)
    throw ModelError("location / confidence sizes do not match " + std::to_string(num_prior) +
                     " priors of " + std::to_string(num_class) + " classes");
  std::vector<Box> decoded(num_prior);
  for (int i = 0; i < num_prior; i++) {
    const float* lp = loc.data() + i * 4;
    const float* pb = prior.data() + i * 4;
    const float* var = prior.shape().h > 1 ? prior.data() + prior.shape().w + i * 4 : param_var;
    const float pw = pb[2] - pb[0], ph = pb[3] - pb[1];
    const float pcx = (pb[0] + pb[2]) * 0.5f, pcy = (pb[1] + pb[3]) * 0.5f;
    const float cx = var[0] * lp[0] * pw + pcx, cy = var[1] * lp[1] * ph + pcy;
    const float bw = std::exp(var[2] * lp[2]) * pw, bh = std::exp(var[3] * lp[3]) * ph;
    decoded[i] = {cx - bw * 0.5f, cy - bh * 0.5f, cx + bw * 0.5f, cy + bh * 0.5f, 0, 0.f};
  }
  std::vector<Box> all;
  for (int c = 1; c < num_class; c++) {  // class 0 is the background
    std::vector<Box> cls;
    for (int i = 0; i < num_prior; i++) {
      const float score = conf[size_t(i) * num_class + c];
      if (score > conf_threshold) {
        Box b = decoded[i];
        b.label = c - 1;
        b.score = score;
        cls.push_back(b);
      }
    }
    sort_by_score(cls);
    if (nms_top_k >= 0 && int(cls.size()) > nms_top_k) cls.resize(nms_top_k);
    for (const Box& b : nms(cls, nms_threshold)) all.push_back(b);
  }
  sort_by_score(all);
  if (keep_top_k >= 0 && int(all.size()) > keep_top_k) all.resize(keep_top_k);
  write_boxes(all, out[0]);
}

// YOLO v2 (YoloDetectionOutput, softmax classes) and v3 (Yolov3DetectionOutput,
// sigmoid classes, per-scale anchor masks).
void yolo_detection_output(const Layer& l, const Inputs& in, Outputs& out) {
  const ParamDict& p = l.params;
  const bool v3 = l.type == "Yolov3DetectionOutput";
  const int num_class = p.get_int(0, 20), num_box = p.get_int(1, 5);
  const float conf_threshold = p.get_float(2, 0.01f), nms_threshold = p.get_float(3, 0.45f);
  const std::vector<float> biases = p.get_floats(4);
  const std::vector<float> mask = float_array(p, 5), anchors_scale = float_array(p, 6);
  std::vector<Box> all;
  for (size_t b = 0; b < in.size(); b++) {
    const Tensor& x = *in[b];
    const int w = x.shape().w, h = x.shape().h, per_box = x.shape().c / num_box;
    if (per_box != 5 + num_class || x.shape().c % num_box != 0)
      throw ModelError("input " + std::to_string(b) + " has " + std::to_string(x.shape().c) +
                       " channels, expected " + std::to_string(num_box) + " x (5 + " +
                       std::to_string(num_class) + ")");
    const float net_w = v3 ? float(int(anchors_scale.at(b) * w)) : float(w);
    const float net_h = v3 ? float(int(anchors_scale.at(b) * h)) : float(h);
    for (int pp = 0; pp < num_box; pp++) {
      const int anchor = v3 ? int(mask.at(b * num_box + pp)) : pp;
      const float bias_w = biases.at(anchor * 2), bias_h = biases.at(anchor * 2 + 1);
      const int c0 = pp * per_box;
      for (int i = 0; i < h; i++) {
        for (int j = 0; j < w; j++) {
          int best = 0;
          float best_score = -FLT_MAX;
          for (int q = 0; q < num_class; q++) {
            const float s = x.at(j, i, c0 + 5 + q);
            if (s > best_score) best_score = s, best = q;
          }
          float class_score;
          if (v3) {
            class_score = sigmoid(best_score);
          } else {
            float sum = 0.f;
            for (int q = 0; q < num_class; q++)
              sum += std::exp(x.at(j, i, c0 + 5 + q) - best_score);
            class_score = 1.f / sum;
          }
          const float confidence = sigmoid(x.at(j, i, c0 + 4)) * class_score;
          if (confidence < conf_threshold) continue;
          const float cx = (j + sigmoid(x.at(j, i, c0))) / w;
          const float cy = (i + sigmoid(x.at(j, i, c0 + 1))) / h;
          const float bw = std::exp(x.at(j, i, c0 + 2)) * bias_w / net_w;
          const float bh = std::exp(x.at(j, i, c0 + 3)) * bias_h / net_h;
          all.push_back({cx - bw * 0.5f, cy - bh * 0.5f, cx + bw * 0.5f, cy + bh * 0.5f, best,
                         confidence});
        }
      }
    }
  }
  sort_by_score(all);
  write_boxes(nms(all, nms_threshold), out[0]);
}

}  // namespace rplayer::nn::cpu
