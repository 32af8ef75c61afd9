// atheria_qca_engine: steps a QCA grid natively with an exported update step.
//
//   atheria_qca_engine run   MODEL STATE_IN STATE_OUT STEPS [--every K --trajectory FILE] [--threads T]
//   atheria_qca_engine bench MODEL STATE_IN STEPS [--repeats R] [--warmup W] [--threads T]
//
// MODEL is the QCA update step: a TorchScript file (`.pt`, torch::jit::load) or an AOTInductor
// package (`.pt2`). It maps a float32 state [B, 2*d_state, H, W] (real parts, then imaginary
// parts, as channels) to the next state in the same layout. STATE_IN holds the initial state
// as written by Python's `torch.save(tensor)`; STATE_OUT receives the state after STEPS steps in
// the same format (`torch.load(path)` reads it back), and FILE the states after steps K, 2K, ...
// stacked as [n, B, C, H, W]. `bench` prints one JSON line with the wall time of each repeat of
// STEPS steps (after W warm-up steps), so callers compute steps/s themselves.
#include <ATen/Parallel.h>
#include <torch/csrc/inductor/aoti_package/model_package_loader.h>
#include <torch/script.h>
#include <torch/serialize.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The simulation: a loaded update step, the current state and how many steps it has taken.
// The names follow the seeds' Python binding (engine.load_model, engine.step_native).
class Engine {
 public:
  // Loads the update step: an AOTInductor package when the name ends in .pt2, else TorchScript.
  void load_model(const std::string& path) {
    if (ends_with(path, ".pt2")) {
      auto loader = std::make_shared<torch::inductor::AOTIModelPackageLoader>(path);
      step_ = [loader](const torch::Tensor& state) { return loader->run({state}).at(0); };
      return;
    }
    auto module = std::make_shared<torch::jit::script::Module>(torch::jit::load(path, torch::kCPU));
    module->eval();
    step_ = [module](const torch::Tensor& state) { return module->forward({state}).toTensor(); };
  }

  void set_state(const torch::Tensor& state) {
    if (state.dim() != 4 || state.scalar_type() != torch::kFloat32 || state.size(1) % 2 != 0) {
      std::ostringstream shape;
      shape << state.sizes();
      throw std::runtime_error("the state must be float32 [B, 2*d_state, H, W], got " +
                               std::string(c10::toString(state.scalar_type())) + " " + shape.str());
    }
    state_ = state.contiguous();
    steps_ = 0;
  }

  // Advances the grid one step; returns the number of steps taken so far.
  int64_t step_native() {
    if (!step_) throw std::runtime_error("no model: call load_model first");
    torch::InferenceMode inference;  // no autograd bookkeeping, as Python's torch.inference_mode
    torch::Tensor next = step_(state_);
    if (!next.sizes().equals(state_.sizes())) {
      throw std::runtime_error("the model changed the state's shape: it is not a QCA update step");
    }
    state_ = next;
    return ++steps_;
  }

  void run(int64_t steps) {
    for (int64_t i = 0; i < steps; ++i) step_native();
  }

  const torch::Tensor& state() const { return state_; }

 private:
  static bool ends_with(const std::string& text, const std::string& suffix) {
    return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
  }

  std::function<torch::Tensor(const torch::Tensor&)> step_;
  torch::Tensor state_;
  int64_t steps_ = 0;
};

torch::Tensor read_tensor(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  if (!file) throw std::runtime_error("cannot read " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(file)), std::istreambuf_iterator<char>());
  return torch::pickle_load(bytes).toTensor();
}

void write_tensor(const std::string& path, const torch::Tensor& tensor) {
  std::vector<char> bytes = torch::pickle_save(tensor);
  std::ofstream file(path, std::ios::binary);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!file) throw std::runtime_error("cannot write " + path);
}

// Positional arguments, and --name value options (all integers here).
struct Arguments {
  std::vector<std::string> positional;
  std::map<std::string, std::string> options;

  int64_t integer(const std::string& name, int64_t fallback) const {
    auto found = options.find(name);
    return found == options.end() ? fallback : std::stoll(found->second);
  }
};

Arguments parse(int argc, char** argv) {
  Arguments arguments;
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (word.rfind("--", 0) == 0) {
      if (i + 1 >= argc) throw std::invalid_argument(word + " needs a value");
      arguments.options[word] = argv[++i];
    } else {
      arguments.positional.push_back(word);
    }
  }
  return arguments;
}

int run(const Arguments& arguments, Engine& engine) {
  const int64_t steps = std::stoll(arguments.positional.at(4));
  const int64_t every = arguments.integer("--every", 0);
  const bool keep_trajectory = arguments.options.count("--trajectory") > 0;
  if (keep_trajectory && every <= 0) throw std::invalid_argument("--trajectory needs --every K (K > 0)");
  if (keep_trajectory && every > steps) throw std::invalid_argument("--every K must not exceed STEPS");
  std::vector<torch::Tensor> trajectory;
  for (int64_t step = 1; step <= steps; ++step) {
    engine.step_native();
    if (keep_trajectory && step % every == 0) trajectory.push_back(engine.state());
  }
  write_tensor(arguments.positional.at(3), engine.state());
  if (keep_trajectory) write_tensor(arguments.options.at("--trajectory"), torch::stack(trajectory));
  return 0;
}

int bench(const Arguments& arguments, Engine& engine) {
  const int64_t steps = std::stoll(arguments.positional.at(3));
  const int64_t repeats = arguments.integer("--repeats", 5);
  engine.run(arguments.integer("--warmup", 20));  // the JIT profiles and optimizes on early calls
  std::cout << "{\"steps\": " << steps << ", \"threads\": " << at::get_num_threads() << ", \"seconds\": [";
  for (int64_t repeat = 0; repeat < repeats; ++repeat) {
    auto start = std::chrono::steady_clock::now();
    engine.run(steps);
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    std::cout << (repeat ? ", " : "") << elapsed.count();
  }
  std::cout << "]}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage = std::string("usage: ") + argv[0] +
                            " run MODEL STATE_IN STATE_OUT STEPS [--every K --trajectory FILE] [--threads T]\n"
                            "       " + argv[0] + " bench MODEL STATE_IN STEPS [--repeats R] [--warmup W] [--threads T]\n";
  try {
    Arguments arguments = parse(argc, argv);
    const auto& words = arguments.positional;
    const bool is_run = words.size() == 5 && words[0] == "run";
    const bool is_bench = words.size() == 4 && words[0] == "bench";
    if (!is_run && !is_bench) {
      std::cerr << usage;
      return 2;
    }
    if (arguments.options.count("--threads")) at::set_num_threads(static_cast<int>(arguments.integer("--threads", 1)));
    Engine engine;
    engine.load_model(words[1]);
    engine.set_state(read_tensor(words[2]));
    return is_run ? run(arguments, engine) : bench(arguments, engine);
  } catch (const std::invalid_argument& error) {
    std::cerr << "atheria_qca_engine: " << error.what() << '\n' << usage;
    return 2;
  } catch (const std::exception& error) {
    std::cerr << "atheria_qca_engine: " << error.what() << '\n';
    return 1;
  }
}
