#include "nn/cpu_reference.h"

#include <memory>

#include "nn/cpu_ops.h"
#include "nn/layer_spec.h"
#include "nn/model_error.h"

namespace rplayer::nn {

std::vector<Tensor> run_layer_cpu(const Layer& layer, const std::vector<const Tensor*>& inputs) {
  try {
    const cpu::OpFn op = cpu::find_op(layer.type);
    if (!op) throw ModelError("no CPU kernel for layer type " + layer.type);
    std::vector<Shape> in_shapes;
    for (const Tensor* t : inputs) in_shapes.push_back(t->shape());
    std::vector<Tensor> out;
    for (const Shape& s : infer_layer_shapes(layer, in_shapes)) out.emplace_back(s);
    op(layer, inputs, out);
    return out;
  } catch (const ModelError& e) {
    throw ModelError("layer " + layer.name + " (" + layer.type + "): " + e.what());
  }
}

std::map<std::string, Tensor> CpuExecutor::run(const std::map<std::string, Tensor>& inputs,
                                               const std::vector<std::string>& outputs) const {
  const Graph& g = graph_;
  std::vector<int> wanted;
  if (outputs.empty()) wanted = g.output_blobs();
  for (const std::string& name : outputs) wanted.push_back(g.blob_index(name));

  // Layers the wanted blobs depend on, and how many pending reads each blob has.
  std::vector<bool> needed(g.layers().size(), false);
  std::vector<int> pending(g.blobs().size(), 0);
  std::vector<int> stack = wanted;
  std::vector<bool> seen(g.blobs().size(), false);
  while (!stack.empty()) {
    const int b = stack.back();
    stack.pop_back();
    if (seen[b]) continue;
    seen[b] = true;
    const int p = g.blob(b).producer;
    if (p < 0 || needed[p]) continue;
    needed[p] = true;
    for (int in : g.layer(p).inputs) {
      pending[in]++;
      stack.push_back(in);
    }
  }
  std::vector<bool> keep(g.blobs().size(), false);
  for (int b : wanted) keep[b] = true;

  std::vector<std::unique_ptr<Tensor>> values(g.blobs().size());
  for (size_t li = 0; li < g.layers().size(); li++) {
    if (!needed[li]) continue;
    const Layer& l = g.layer(int(li));
    std::vector<Tensor> out;
    if (l.type == "Input") {
      for (int b : l.outputs) {
        auto it = inputs.find(g.blob(b).name);
        if (it == inputs.end())
          throw ModelError(g.source + ": no value given for input blob '" + g.blob(b).name + "'");
        out.push_back(it->second);
      }
    } else {
      std::vector<const Tensor*> in;
      for (int b : l.inputs) in.push_back(values[b].get());
      out = run_layer_cpu(l, in);
      for (int b : l.inputs)
        if (--pending[b] == 0 && !keep[b]) values[b].reset();
    }
    for (size_t i = 0; i < l.outputs.size(); i++) {
      out[i].set_name(g.blob(l.outputs[i]).name);
      values[l.outputs[i]] = std::make_unique<Tensor>(std::move(out[i]));
    }
  }
  std::map<std::string, Tensor> result;
  for (int b : wanted) result.emplace(g.blob(b).name, *values[b]);
  return result;
}

}  // namespace rplayer::nn
